"""Install auto-clip's automations and concurrency limits on a Prefect server, from a declarative YAML file.

Why not `prefect automation create --from-file`: it wants literal block document ids, which differ per
server, and it creates a second copy on every call. Here blocks are named, names are resolved on the
target server, and applying is idempotent (automations matched by name, limits by tag/name), so the same
file can be applied to every environment, as often as wanted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import yaml
from prefect.blocks.core import Block
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.events.schemas.automations import AutomationCore
from prefect.exceptions import ObjectNotFound

from autoclip.errors import AutoclipError

# Shipped inside the package, so `autoclip automations apply` works after `pip install .` as well as in a
# checkout (the repository no longer keeps a second copy under deployments/).
DEFAULT_FILE = Path(__file__).resolve().parent / "automations.yaml"

# The block type an action's `block:` refers to when the YAML gives no `block_type:`.
DEFAULT_BLOCK_TYPES = {"call-webhook": "webhook", "send-notification": "custom-webhook"}

_CREATE_HINTS = {
    "webhook": ("python -c \"from prefect.blocks.webhook import Webhook; Webhook(method='POST', "
                "url='https://example.com/hook', headers={{'Content-Type': 'application/json'}})"
                ".save('{name}')\""),
    "custom-webhook": ("python -c \"from prefect.blocks.notifications import CustomWebhookNotificationBlock "
                       "as B; B(name='auto-clip', url='https://chat.example.com/hook', "
                       "json_data={{'text': '{{{{subject}}}}: {{{{body}}}}'}}).save('{name}')\""),
}


class AutomationsError(AutoclipError):
    """The automations file is wrong, or names a block the server does not have."""


def create_hint(block_type: str, name: str) -> str:
    """How to create a missing block, for error messages."""
    template = _CREATE_HINTS.get(block_type)
    return template.format(name=name) if template else f"prefect block create {block_type}  (name it '{name}')"


def load(path: Path | str = DEFAULT_FILE) -> dict[str, Any]:
    """Read and check the file's shape (not yet against a server), so mistakes surface before any change."""
    path = Path(path)
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise AutomationsError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise AutomationsError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(spec, dict) or set(spec) - {"automations", "concurrency"}:
        raise AutomationsError(f"{path}: expected a mapping with 'automations' and/or 'concurrency'")
    automations = spec.setdefault("automations", []) or []
    if not isinstance(automations, list) or not all(isinstance(a, dict) and a.get("name") for a in automations):
        raise AutomationsError(f"{path}: 'automations' must be a list of mappings, each with a name")
    names = [a["name"] for a in automations]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise AutomationsError(f"{path}: automation names must be unique (repeated: {', '.join(dupes)})")
    concurrency = spec.setdefault("concurrency", {}) or {}
    if not isinstance(concurrency, dict) or set(concurrency) - {"tags", "global"}:
        raise AutomationsError(f"{path}: 'concurrency' may have 'tags' (tag: limit) and 'global' (a list)")
    tags = concurrency.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, int) and v >= 0 for v in tags.values()):
        raise AutomationsError(f"{path}: 'concurrency.tags' must map tags to whole numbers >= 0")
    for limit in concurrency.get("global") or []:
        if not isinstance(limit, dict) or not limit.get("name") or not isinstance(limit.get("limit"), int):
            raise AutomationsError(f"{path}: each 'concurrency.global' entry needs a name and a whole limit")
    spec["automations"], spec["concurrency"] = automations, concurrency
    return spec


def _block_refs(entry: dict) -> list[tuple[str, str]]:
    refs = []
    for action in entry.get("actions") or []:
        if isinstance(action, dict) and "block" in action:
            slug = action.get("block_type") or DEFAULT_BLOCK_TYPES.get(action.get("type", ""))
            if not slug:
                raise AutomationsError(f"automation '{entry['name']}': action '{action.get('type')}' names a "
                                       "block but no block_type")
            refs.append((slug, str(action["block"])))
    return refs


def _resolve_block(client, slug: str, name: str, create_missing: dict, lines: list[str]) -> UUID | None:
    """The block document id of `slug/name`; saves one from `create_missing` first if it is missing there."""
    try:
        return client.read_block_document_by_name(name, slug, include_secrets=False).id
    except ObjectNotFound:
        pass
    given = create_missing.get(f"{slug}/{name}", create_missing.get(name))
    if given is None:
        return None
    if isinstance(given, dict):
        given = Block.get_block_class_from_key(slug)(**given)
    if not isinstance(given, Block) or given.get_block_type_slug() != slug:
        raise AutomationsError(f"create_missing_blocks['{name}'] must be a {slug} block (or its fields)")
    block_id = given.save(name, overwrite=False, _sync=True)
    lines.append(f"created block {slug}/{name}")
    return block_id


def _core(entry: dict, block_ids: dict[tuple[str, str], UUID]) -> AutomationCore:
    """Prefect's automation model for one YAML entry, block names replaced by ids."""
    data = {k: v for k, v in entry.items() if k != "optional"}
    actions = []
    for action in data.get("actions") or []:
        action = dict(action)
        if "block" in action:
            slug = action.pop("block_type", None) or DEFAULT_BLOCK_TYPES[action["type"]]
            action["block_document_id"] = str(block_ids[(slug, str(action.pop("block")))])
        actions.append(action)
    data["actions"] = actions
    try:
        core = AutomationCore.model_validate(data)
    except Exception as exc:  # noqa: BLE001 - pydantic's message says which field
        raise AutomationsError(f"automation '{entry['name']}' is not valid: {exc}") from None
    # every field marked as set, so an update replaces the whole automation (it sends set fields only),
    # except owner_resource, which the update endpoint refuses
    return AutomationCore.model_validate(core.model_dump(exclude={"owner_resource"}))


def _sample_contexts() -> list[dict[str, Any]]:
    """Awkward but typical values (quotes, backslashes, newlines, non-ASCII, nested options)."""
    from prefect.client.schemas.objects import Flow, FlowRun, State, StateType
    from prefect.events.schemas.events import Event

    params = {"sources": ['/videos/"best" of\\2024.mp4', "s3://bucket/été/clip 1.mp4"],
              "options": {"target_duration": 30.0, "width": 1280, "engine": "ffmpeg", "subtitles": None},
              "output": "out/reel<1>&.mp4", "webhook_url": None}
    contexts = []
    for state_type, name, message in [(StateType.COMPLETED, "Completed", 's3://bucket/reels/"a"\\b é.mp4'),
                                      (StateType.FAILED, "Failed", 'InputError: x.mp4: no usable video:\n"bad"')]:
        run_id = uuid4()
        flow_run = FlowRun(id=run_id, name="witty-fox", flow_id=uuid4(), parameters=params,
                           state=State(type=state_type, name=name, message=message))
        event = Event(event=f"prefect.flow-run.{name}", resource={"prefect.resource.id": f"prefect.flow-run.{run_id}"})
        contexts.append({"flow_run": flow_run, "flow": Flow(name="auto-clip"), "event": event})
    return contexts


def check_json_payloads(core: AutomationCore) -> None:
    """Render each call-webhook payload that looks like JSON with sample values and parse it, so a payload
    that would send invalid JSON for ordinary parameters is refused here, not found out by the receiver."""
    from prefect.server.events.jinja_filters import all_filters
    from prefect.server.utilities.user_templates import (register_user_template_filters,
                                                         render_user_template_sync)

    register_user_template_filters(all_filters)  # the server's own filters (ui_url, ...), as it renders them
    for action in core.actions:
        payload = getattr(action, "payload", None) if action.type == "call-webhook" else None
        if not payload or payload.lstrip()[:1] not in ("{", "["):
            continue
        for context in _sample_contexts():
            try:
                json.loads(render_user_template_sync(payload, context))
            except Exception as exc:  # noqa: BLE001 - a render error or a JSON error, both the YAML's fault
                raise AutomationsError(
                    f"automation '{core.name}': the webhook payload does not give valid JSON for sample values "
                    f"({exc}); pass every value through '| tojson'") from None


def _comparable(core: AutomationCore) -> str:
    def norm(value):
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items() if k != "id"}
        if isinstance(value, list):
            items = [norm(v) for v in value]
            return sorted(items) if all(isinstance(v, str) for v in items) else items  # sets: expect, tags
        return value

    data = core.model_dump(mode="json")
    fields = AutomationCore.model_fields
    return json.dumps(norm({k: v for k, v in data.items() if k in fields}), sort_keys=True)


def _apply_automation(client, core: AutomationCore) -> str:
    existing = client.read_automations_by_name(core.name)  # newest first
    extra = ""
    for duplicate in existing[1:]:  # left by hand or by `prefect automation create`: keep exactly one
        client.delete_automation(duplicate.id)
    if len(existing) > 1:
        extra = f" (removed {len(existing) - 1} duplicate(s))"
    if not existing:
        client.create_automation(core)
        return f"created automation '{core.name}'"
    current = existing[0]
    if _comparable(AutomationCore.model_validate(current.model_dump())) == _comparable(core):
        return f"unchanged automation '{core.name}'{extra}"
    client.update_automation(current.id, core)
    return f"updated automation '{core.name}'{extra}"


def _apply_tag_limit(client, tag: str, limit: int) -> str:
    try:
        current = client.read_concurrency_limit_by_tag(tag).concurrency_limit
    except ObjectNotFound:
        current = None
    if current == limit:
        return f"unchanged tag concurrency limit '{tag}' = {limit}"
    client.create_concurrency_limit(tag=tag, concurrency_limit=limit)  # the API upserts by tag
    return (f"created tag concurrency limit '{tag}' = {limit}" if current is None
            else f"updated tag concurrency limit '{tag}' = {limit} (was {current})")


def _apply_global_limit(client, spec: dict) -> str:
    name, limit = spec["name"], spec["limit"]
    decay = float(spec.get("slot_decay_per_second", 0.0))
    active = bool(spec.get("active", True))
    what = f"global concurrency limit '{name}' = {limit}" + (f", decay {decay}/s" if decay else "")
    try:
        current = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
            name=name, limit=limit, slot_decay_per_second=decay, active=active))
        return f"created {what}"
    if (current.limit, float(current.slot_decay_per_second), current.active) == (limit, decay, active):
        return f"unchanged {what}"
    client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(
        limit=limit, slot_decay_per_second=decay, active=active))
    return f"updated {what}"


def apply(path: Path | str = DEFAULT_FILE, *, create_missing_blocks: dict | None = None) -> list[str]:
    """Create or update every automation and concurrency limit of `path` on the current Prefect API
    (PREFECT_API_URL); return one human-readable line per thing done (created / updated / unchanged /
    skipped).

    Blocks are named in the file and resolved to ids here. A missing block stops everything before any
    change (with the command that creates it), unless its automation is `optional: true`, which is then
    skipped, or `create_missing_blocks` holds it: {name or "slug/name": Block instance or dict of fields},
    saved under that name only when the server lacks it (never overwriting).
    """
    spec = load(path)
    create_missing = dict(create_missing_blocks or {})
    lines: list[str] = []
    with get_client(sync_client=True) as client:
        block_ids: dict[tuple[str, str], UUID] = {}
        missing: list[str] = []
        plans: list[AutomationCore | str] = []  # an automation to apply, or the line saying why it is not
        for entry in spec["automations"]:
            refs = _block_refs(entry)
            absent = []
            for slug, name in refs:
                if (slug, name) not in block_ids:
                    block_id = _resolve_block(client, slug, name, create_missing, lines)
                    if block_id is None:
                        absent.append((slug, name))
                        continue
                    block_ids[(slug, name)] = block_id
            if absent and entry.get("optional"):
                plans.append(f"skipped automation '{entry['name']}' (optional): block "
                             + ", ".join(f"{s}/{n}" for s, n in absent) + " does not exist; create it with: "
                             + create_hint(*absent[0]))
                continue
            missing += [f"  {s}/{n} (used by '{entry['name']}'); create it with:\n    {create_hint(s, n)}"
                        for s, n in absent]
            if not absent:
                core = _core(entry, block_ids)
                check_json_payloads(core)
                plans.append(core)
        if missing:
            raise AutomationsError("these blocks do not exist on the server (no automation or limit was changed):\n"
                                   + "\n".join(dict.fromkeys(missing)))
        for plan in plans:
            lines.append(plan if isinstance(plan, str) else _apply_automation(client, plan))
        for tag, limit in (spec["concurrency"].get("tags") or {}).items():
            lines.append(_apply_tag_limit(client, str(tag), limit))
        for limit in spec["concurrency"].get("global") or []:
            lines.append(_apply_global_limit(client, limit))
    return lines
