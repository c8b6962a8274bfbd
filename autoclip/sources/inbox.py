"""An inbox: a local folder or an object prefix that scheduled scans turn into reels.

Each video is known by a fingerprint (local: path + size + mtime_ns; objects: URI + size + ETag, or the
last-modified time when there is no ETag), so a file that is replaced or still growing counts as new.
A LEDGER beside the inbox records what happened to each fingerprint:

    local:   <inbox>/.autoclip/ledger.json      (written to a temp file, then os.replace)
    objects: <prefix>.autoclip/ledger.json      (one PUT: readers see the old or the new ledger)

    {"version": 1, "inbox": "...", "items": {"<fingerprint>": {"source": "...", "status": "claimed",
      "run_id": "...", "claimed_at": "<UTC ISO>", "attempts": 1, "finished_at": null, "reel": null,
      "reason": null}}}

status is `claimed` (a run is working on it), `done` or `failed`. A claim older than `claim_timeout`
(the run crashed) makes the video pending again; after `max_attempts` such abandoned claims it is marked
failed instead, so a video that kills its run is not retried forever. Failed videos stay failed until a
scan runs with `retry_failed=True`, `forget()` drops their entries, or the file changes (new fingerprint).

Plain Python: each update is one read-modify-write of the ledger, so the caller must serialise updates
for one inbox (the inbox flow holds a Prefect global concurrency limit of 1 around them).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

from autoclip.config import Settings
from autoclip.errors import AutoclipError, InputError, StorageError
from autoclip.sources import expand_sources

__all__ = ["CLAIM_TIMEOUT", "InboxScan", "Item", "LEDGER_DIR", "claim", "describe_error", "forget",
           "is_object_inbox", "list_items", "load_ledger", "lock_name", "mark_done", "mark_failed", "normalize",
           "release",
           "pending", "reel_location", "settled"]

LEDGER_DIR = ".autoclip"
LEDGER_NAME = "ledger.json"
CLAIM_TIMEOUT = 6 * 3600.0
MAX_ATTEMPTS = 3
_OBJECT = ("s3://", "oss://")


@dataclass(frozen=True)
class Item:
    """One video in the inbox as seen by one scan."""

    source: str          # what the main flow gets: an absolute path or an s3:// / oss:// URI
    fingerprint: str
    size: int
    modified: float      # seconds since the epoch (local mtime or object last-modified), 0 when unknown


class InboxScan(BaseModel):
    """What one scan did."""

    inbox: str
    message: str
    processed: list[str] = Field(default_factory=list, description="sources that went into the reel's run")
    failed: dict[str, str] = Field(default_factory=dict, description="source -> reason")
    waiting: list[str] = Field(default_factory=list,
                               description="pending sources not claimed (too few, or still being written)")
    reel: str | None = None
    reel_url: str | None = None
    run_id: str | None = Field(None, description="the auto-clip flow run that made the reel")


# ---------------------------------------------------------------------------------------------- naming

def is_object_inbox(inbox: str) -> bool:
    return inbox.startswith(_OBJECT)


def normalize(inbox: str) -> str:
    """The canonical form: an absolute folder path, or a prefix URI ending in '/'."""
    if is_object_inbox(inbox):
        from autoclip.storage.objects import split_uri

        split_uri(inbox)  # validates scheme and bucket
        return inbox if inbox.endswith("/") else inbox + "/"
    return str(Path(inbox).expanduser().resolve())


def lock_name(inbox: str) -> str:
    """Name of the global concurrency limit that serialises ledger updates for this inbox."""
    return "autoclip-inbox-" + hashlib.sha256(normalize(inbox).encode()).hexdigest()[:16]


def _side(inbox: str, *parts: str) -> str:
    """A path or URI inside the inbox's `.autoclip` area."""
    inbox = normalize(inbox)
    if is_object_inbox(inbox):
        return inbox + "/".join((LEDGER_DIR, *parts))
    return str(Path(inbox, LEDGER_DIR, *parts))


def reel_location(inbox: str, output_prefix: str, stamp: str) -> str:
    """Where a scan's reel goes: `<output_prefix>-<stamp>.mp4`, inside `<inbox>/.autoclip/reels/` (or
    `<prefix>.autoclip/reels/` in the bucket) unless `output_prefix` is an absolute path or a URI."""
    name = f"{output_prefix}-{stamp}.mp4"
    if "://" in output_prefix:
        return name
    if Path(output_prefix).expanduser().is_absolute():
        return str(Path(name).expanduser())
    return _side(inbox, "reels", name)


def _hidden(relative: str) -> bool:
    """Dot files (e.g. macOS '._clip.mp4') and anything in a dot folder such as the `.autoclip` area
    (reels, ledger) are never inbox videos. `relative`: the path below the inbox."""
    return any(part.startswith(".") for part in PurePosixPath(relative).parts)


# ---------------------------------------------------------------------------------------------- listing

def list_items(inbox: str, settings: Settings) -> list[Item]:
    """The videos in the inbox now, sorted by source. An unreachable inbox raises (InputError/StorageError);
    an empty one is an empty list."""
    inbox = normalize(inbox)
    if is_object_inbox(inbox):
        details = _object_details(inbox, settings)  # raises when the prefix cannot be listed
        found, _ = expand_sources([inbox], settings)
        items = []
        for uri in found:
            if uri in details and not _hidden(uri[len(inbox):]):
                size, tag, modified = details[uri]
                items.append(Item(uri, _fingerprint(uri, size, tag), size, modified))
        return sorted(items, key=lambda i: i.source)
    folder = Path(inbox)
    if not folder.is_dir():
        raise InputError(inbox, "the inbox is not a folder" if folder.exists() else "the inbox does not exist")
    found, _ = expand_sources([inbox], settings)  # an empty folder is only "nothing new"
    items = []
    for path in found:
        if _hidden(Path(path).name):
            continue
        try:
            stat = os.stat(path)
        except FileNotFoundError:  # removed between the listing and now
            continue
        items.append(Item(path, _fingerprint(path, stat.st_size, str(stat.st_mtime_ns)), stat.st_size,
                          stat.st_mtime_ns / 1e9))
    return sorted(items, key=lambda i: i.source)


def _fingerprint(source: str, size: int, tag: str) -> str:
    return hashlib.sha256(f"{source}\0{size}\0{tag}".encode()).hexdigest()[:32]


def _object_details(prefix: str, settings: Settings) -> dict[str, tuple[int, str, float]]:
    """URI -> (size, ETag or last-modified, last-modified epoch) for every object under the prefix."""
    from autoclip.storage.objects import classify_error, split_uri

    scheme, bucket, key = split_uri(prefix)
    config = settings.object_store(scheme)
    found = {}
    try:
        if scheme == "oss" and config.addressing_style != "path":
            import oss2

            for obj in oss2.ObjectIterator(config.oss_bucket(bucket), prefix=key):
                found[f"{scheme}://{bucket}/{obj.key}"] = (int(obj.size), str(obj.etag or obj.last_modified),
                                                           float(obj.last_modified or 0))
        else:
            for path, info in config.filesystem().find(f"{bucket}/{key}", detail=True).items():
                modified = info.get("LastModified")
                stamp = modified.timestamp() if isinstance(modified, datetime) else 0.0
                tag = str(info.get("ETag") or modified or "").strip('"')
                found[f"{scheme}://{path}"] = (int(info.get("size") or 0), tag, stamp)
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify_error(prefix, exc, config) from exc
    return found


# ---------------------------------------------------------------------------------------------- ledger

def _empty(inbox: str) -> dict:
    return {"version": 1, "inbox": normalize(inbox), "items": {}}


def load_ledger(inbox: str, settings: Settings) -> dict:
    """The ledger, or an empty one when there is none yet. A ledger that is not valid JSON raises rather
    than being silently replaced (that would make every video pending again)."""
    where = _side(inbox, LEDGER_NAME)
    raw = _read_object(where, settings) if is_object_inbox(where) else _read_local(Path(where))
    if raw is None:
        return _empty(inbox)
    try:
        ledger = json.loads(raw)
        if not isinstance(ledger.get("items"), dict):
            raise ValueError("no 'items' object")
    except ValueError as exc:
        raise StorageError(f"the inbox ledger {where} is unreadable ({exc}); repair or delete it "
                           "(deleting it makes every video in the inbox new again)") from exc
    return ledger


def _save_ledger(inbox: str, ledger: dict, settings: Settings) -> None:
    where = _side(inbox, LEDGER_NAME)
    data = json.dumps(ledger, indent=1, sort_keys=True, ensure_ascii=False).encode()
    if is_object_inbox(where):
        _write_object(where, data, settings)
    else:
        _write_local(Path(where), data)


def _read_local(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read the inbox ledger {path}: {exc}") from exc


def _write_local(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, os.replace: a reader sees the old ledger or the new one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot write the inbox ledger {path}: {exc}") from exc


def _read_object(uri: str, settings: Settings) -> bytes | None:
    from autoclip.storage.objects import classify_error, split_uri

    scheme, bucket, key = split_uri(uri)
    config = settings.object_store(scheme)
    try:
        if scheme == "oss" and config.addressing_style != "path":
            import oss2

            try:
                return config.oss_bucket(bucket).get_object(key).read()
            except oss2.exceptions.NoSuchKey:
                return None
        return config.filesystem().cat_file(f"{bucket}/{key}")
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify_error(uri, exc, config) from exc


def _write_object(uri: str, data: bytes, settings: Settings) -> None:
    from autoclip.storage.objects import classify_error, split_uri

    scheme, bucket, key = split_uri(uri)
    config = settings.object_store(scheme)
    try:
        if scheme == "oss" and config.addressing_style != "path":
            config.oss_bucket(bucket).put_object(key, data)
        else:
            config.filesystem().pipe_file(f"{bucket}/{key}", data)
    except Exception as exc:  # noqa: BLE001 - classified
        raise classify_error(uri, exc, config) from exc


# ---------------------------------------------------------------------------------------------- state

def _now(now: datetime | None) -> datetime:
    return now or datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def _stale(entry: dict, now: datetime, claim_timeout: float) -> bool:
    try:
        claimed = datetime.fromisoformat(entry.get("claimed_at") or "")
    except ValueError:
        return True
    return now - claimed > timedelta(seconds=claim_timeout)


def _is_pending(entry: dict | None, now: datetime, claim_timeout: float, retry_failed: bool) -> bool:
    if entry is None:
        return True
    status = entry.get("status")
    if status == "claimed":
        return _stale(entry, now, claim_timeout)
    if status == "failed":
        return retry_failed
    return status != "done"


def pending(inbox: str, settings: Settings, *, now: datetime | None = None,
            claim_timeout: float = CLAIM_TIMEOUT, retry_failed: bool = False) -> list[Item]:
    """The videos not yet done, failed (unless `retry_failed`) or claimed by a live run; a claim older
    than `claim_timeout` seconds is a crashed run's, so its videos are pending again."""
    now = _now(now)
    entries = load_ledger(inbox, settings)["items"]
    return [item for item in list_items(inbox, settings)
            if _is_pending(entries.get(item.fingerprint), now, claim_timeout, retry_failed)]


def settled(items: list[Item], settle_seconds: float, *, now: datetime | None = None) -> tuple[list[Item], list[Item]]:
    """(ready, settling): local files changed within `settle_seconds` may still be being copied in, so they
    wait for a later scan. Objects appear whole, so they are always ready."""
    limit = _now(now).timestamp() - settle_seconds
    ready = [i for i in items if is_object_inbox(i.source) or i.modified <= limit]
    return ready, [i for i in items if i not in ready]


def claim(inbox: str, items: list[Item], run_id: str, settings: Settings, *, now: datetime | None = None,
          claim_timeout: float = CLAIM_TIMEOUT, max_attempts: int = MAX_ATTEMPTS,
          retry_failed: bool = False) -> tuple[list[Item], dict[str, str]]:
    """Mark `items` as claimed by `run_id` in one ledger write; returns (claimed, abandoned).

    Items no longer pending when the ledger is re-read are skipped. A stale claim that has already been
    abandoned `max_attempts` times is marked failed instead (abandoned: source -> reason)."""
    now = _now(now)
    ledger = load_ledger(inbox, settings)
    entries = ledger["items"]
    claimed, abandoned = [], {}
    for item in items:
        entry = entries.get(item.fingerprint)
        if not _is_pending(entry, now, claim_timeout, retry_failed):
            continue
        attempts = (entry or {}).get("attempts", 0) if (entry or {}).get("status") == "claimed" else 0
        if attempts >= max_attempts:
            reason = (f"abandoned: claimed {attempts} times and never finished (each run crashed or was "
                      f"stopped for over {claim_timeout / 3600:g} h)")
            entries[item.fingerprint] = {**entry, "status": "failed", "finished_at": _iso(now), "reason": reason}
            abandoned[item.source] = reason
            continue
        entries[item.fingerprint] = {"source": item.source, "size": item.size, "status": "claimed",
                                     "run_id": run_id, "claimed_at": _iso(now), "attempts": attempts + 1,
                                     "finished_at": None, "reel": None, "reason": None}
        claimed.append(item)
    if claimed or abandoned:
        _save_ledger(inbox, ledger, settings)
    return claimed, abandoned


def _finish(inbox: str, items: list[Item], run_id: str, settings: Settings, status: str, *,
            reel: str | None = None, reasons: dict[str, str] | None = None, reason: str | None = None,
            now: datetime | None = None) -> int:
    now = _now(now)
    ledger = load_ledger(inbox, settings)
    entries = ledger["items"]
    changed = 0
    for item in items:
        entry = entries.get(item.fingerprint)
        if entry is not None and entry.get("run_id") not in (run_id, None):
            continue  # the claim expired and another run owns it now
        entries[item.fingerprint] = {**(entry or {"source": item.source, "size": item.size, "attempts": 1}),
                                     "status": status, "run_id": run_id, "finished_at": _iso(now),
                                     "reel": reel if status == "done" else None,
                                     "reason": (reasons or {}).get(item.source, reason)}
        changed += 1
    if changed:
        _save_ledger(inbox, ledger, settings)
    return changed


def mark_done(inbox: str, items: list[Item], run_id: str, settings: Settings, reel: str | None = None, *,
              now: datetime | None = None) -> int:
    """Record `items` as processed by `run_id` (into `reel`); returns how many entries changed."""
    return _finish(inbox, items, run_id, settings, "done", reel=reel, now=now)


def mark_failed(inbox: str, items: list[Item], run_id: str, settings: Settings, reason: str | dict[str, str], *,
                now: datetime | None = None) -> int:
    """Record `items` as failed, with one reason for all or a source -> reason mapping. Failed videos are
    not picked up again until a scan with `retry_failed=True`, `forget()`, or a change to the file."""
    if isinstance(reason, dict):
        return _finish(inbox, items, run_id, settings, "failed", reasons=reason, reason="failed", now=now)
    return _finish(inbox, items, run_id, settings, "failed", reason=reason, now=now)


def release(inbox: str, items: list[Item], run_id: str, settings: Settings, reason: str, *,
            now: datetime | None = None) -> int:
    """Give claimed `items` back as pending: the run failed for a reason of the machine (disk, killed tool,
    storage, keys), not of the videos, so the next scan tries them again."""
    return _finish(inbox, items, run_id, settings, "retry", reason=reason, now=now)


def forget(inbox: str, settings: Settings, *, status: str = "failed", sources: list[str] | None = None) -> int:
    """Drop ledger entries with `status` (optionally only for `sources`), so the next scan treats those
    videos as new. Returns how many were dropped."""
    ledger = load_ledger(inbox, settings)
    wanted = set(sources) if sources is not None else None
    keep = {fp: e for fp, e in ledger["items"].items()
            if e.get("status") != status or (wanted is not None and e.get("source") not in wanted)}
    dropped = len(ledger["items"]) - len(keep)
    if dropped:
        ledger["items"] = keep
        _save_ledger(inbox, ledger, settings)
    return dropped


def describe_error(exc: BaseException) -> str:
    """A short reason for the ledger."""
    if isinstance(exc, InputError):
        return exc.reason
    if isinstance(exc, AutoclipError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
