"""Automations and concurrency limits from autoclip/ops/automations.yaml, on a real Prefect server: applying
twice leaves one of each, and finished flow runs reach a loopback receiver through the Webhook block (valid
JSON with the run id, state, parameters and the reel URI or the failure reason) and the chat block."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.blocks.webhook import Webhook
from prefect.client.orchestration import get_client
from prefect.events.schemas.automations import AutomationCore
from prefect.exceptions import ObjectNotFound

from autoclip.config import ClipOptions
from autoclip.flows.auto_clip import auto_clip
from autoclip.ops.automations import DEFAULT_FILE, AutomationsError, apply, load

pytestmark = pytest.mark.slow
SMALL = dict(width=320, height=180, fps=25)
SPEC = load(DEFAULT_FILE)
NAMES = [a["name"] for a in SPEC["automations"]]


class Receiver:
    """A loopback HTTP server that records every POST (path, body)."""

    def __init__(self):
        self.posts: list[tuple[str, bytes]] = []
        lock = threading.Lock()
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    posts.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, match, timeout: float = 60.0):
        """The first recorded POST for which `match(path, body)` is true, polling up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for path, body in list(self.posts):
                found = match(path, body)
                if found:
                    return found
            time.sleep(0.25)
        raise AssertionError(f"nothing matching arrived within {timeout:.0f} s; got {self.posts!r}")


@pytest.fixture
def receiver():
    rec = Receiver()
    rec.thread.start()
    try:
        yield rec
    finally:
        rec.server.shutdown()
        rec.server.server_close()


def _delete_block(cls, name):
    try:
        cls.delete(name, _sync=True)
    except (ObjectNotFound, ValueError):
        pass


@pytest.fixture
def blocks(prefect_server, receiver):
    """The blocks the YAML names, pointing at the receiver (the webhook sends JSON)."""
    Webhook(method="POST", url=f"{receiver.url}/webhook",
            headers={"Content-Type": "application/json"}).save("autoclip-notify", overwrite=True, _sync=True)
    CustomWebhookNotificationBlock(name="autoclip-chat", url=f"{receiver.url}/chat",
                                   json_data={"text": "{{subject}}\n{{body}}"}).save("autoclip-chat",
                                                                                      overwrite=True, _sync=True)
    yield receiver
    _delete_block(Webhook, "autoclip-notify")
    _delete_block(CustomWebhookNotificationBlock, "autoclip-chat")


def _remove(names=(), tags=(), global_names=()):
    """Delete automations, tag limits and global limits, so nothing leaks into other tests."""
    with get_client(sync_client=True) as client:
        for name in names:
            for automation in client.read_automations_by_name(name):
                client.delete_automation(automation.id)
        for tag in tags:
            try:
                client.delete_concurrency_limit_by_tag(tag)
            except ObjectNotFound:
                pass
        for name in global_names:
            try:
                client.delete_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                pass


@pytest.fixture
def applied(blocks):
    """The project's file applied twice; yields (receiver, first lines, second lines). Everything it made
    is removed afterwards."""
    try:
        first, second = apply(), apply()
        yield blocks, first, second
    finally:
        _remove(NAMES, SPEC["concurrency"]["tags"], [g["name"] for g in SPEC["concurrency"]["global"]])


def test_applying_twice_leaves_one_of_each_with_the_configured_values(applied):
    _, first, second = applied
    assert [line for line in first if line.startswith("created automation")] == \
        [f"created automation '{name}'" for name in NAMES]
    assert second == [line.replace("created", "unchanged", 1) for line in first], second
    tags = SPEC["concurrency"]["tags"]
    assert tags == {"analysis": 4, "render": 1}
    with get_client(sync_client=True) as client:
        for name in NAMES:
            found = client.read_automations_by_name(name)
            assert len(found) == 1 and found[0].enabled, name
            assert {a.type for a in found[0].actions} <= {"call-webhook", "send-notification"}
        limits = client.read_concurrency_limits(limit=200, offset=0)
        for tag, value in tags.items():
            assert [lim.concurrency_limit for lim in limits if lim.tag == tag] == [value]
        rate = [g for g in client.read_global_concurrency_limits(limit=200) if g.name == "dashscope"]
        assert len(rate) == 1
        assert (rate[0].limit, rate[0].slot_decay_per_second, rate[0].active) == (5, 2.0, True)


def _run_json(path_wanted: str, run_id: str):
    def match(path, body):
        if path != path_wanted:
            return None
        data = json.loads(body)  # every payload the webhook gets must be valid JSON
        return data if data.get("flow_run_id") == run_id else None
    return match


def _chat_text(run_id: str):
    def match(path, body):
        if path != "/chat":
            return None
        text = json.loads(body)["text"]
        return text if f"Flow run: {run_id}" in text else None
    return match


def test_notifications_arrive_for_completed_and_failed_runs(applied, media, tmp_path):
    live = applied[0]
    out = tmp_path / "out" / "reel.mp4"
    good = auto_clip(sources=[str(media.two_shots)], options=ClipOptions(target_duration=5, **SMALL),
                     output=str(out), return_state=True)
    assert good.is_completed(), good.message
    reel = good.result().reel
    assert reel == str(out.resolve()) == good.message
    bad = auto_clip(sources=[str(media.fake)], options=ClipOptions(target_duration=5, **SMALL),
                    output=str(tmp_path / "bad.mp4"), return_state=True)
    assert bad.is_failed()
    good_id, bad_id = str(good.state_details.flow_run_id), str(bad.state_details.flow_run_id)

    done = live.wait_for(_run_json("/webhook", good_id))
    assert (done["event"], done["state"], done["reel"]) == ("auto-clip.completed", "Completed", reel)
    assert done["parameters"]["sources"] == [str(media.two_shots)]
    assert done["parameters"]["options"]["target_duration"] == 5 and done["parameters"]["output"] == str(out)

    failed = live.wait_for(_run_json("/webhook", bad_id))
    assert (failed["event"], failed["state"]) == ("auto-clip.failed", "Failed")
    assert "no usable video" in failed["message"] and "not a readable video file" in failed["message"]

    assert f"Reel ready: {reel}" in live.wait_for(_chat_text(good_id))
    assert "no usable video" in live.wait_for(_chat_text(bad_id))
    # one POST per run and route: the completed route does not fire for the failed run and vice versa
    time.sleep(1)
    hooks = [json.loads(b) for p, b in live.posts if p == "/webhook"]
    assert [h["event"] for h in hooks if h["flow_run_id"] in (good_id, bad_id)] in (
        ["auto-clip.completed", "auto-clip.failed"], ["auto-clip.failed", "auto-clip.completed"])


def _spec_file(tmp_path, spec) -> str:
    path = tmp_path / "automations.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return str(path)


def test_updates_duplicates_missing_and_optional_blocks(prefect_server, receiver, tmp_path):
    tag, rate, suffix = f"t-{uuid.uuid4().hex[:8]}", f"r-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:8]
    hook_name, chat_name = f"hook-{suffix}", f"chat-{suffix}"
    completed, chat = (dict(SPEC["automations"][0]), dict(SPEC["automations"][2]))
    completed["name"], chat["name"] = f"test completed {suffix}", f"test chat {suffix}"
    completed["actions"] = [{**completed["actions"][0], "block": hook_name}]
    chat["actions"] = [{**chat["actions"][0], "block": chat_name}]
    spec = {"automations": [completed, chat],
            "concurrency": {"tags": {tag: 2}, "global": [{"name": rate, "limit": 3, "slot_decay_per_second": 1.0}]}}
    try:
        # a required block that does not exist: nothing changes, and the error says how to create it
        with pytest.raises(AutomationsError, match=f"webhook/{hook_name}.*create it with") as caught:
            apply(_spec_file(tmp_path, spec))
        assert f".save('{hook_name}')" in str(caught.value)
        with get_client(sync_client=True) as client:
            assert client.read_automations_by_name(completed["name"]) == []

        # the block is created from create_missing_blocks; the optional chat route is skipped
        lines = apply(_spec_file(tmp_path, spec), create_missing_blocks={
            hook_name: Webhook(url=f"{receiver.url}/webhook", headers={"Content-Type": "application/json"})})
        assert lines[0] == f"created block webhook/{hook_name}"
        assert f"created automation '{completed['name']}'" in lines
        assert any(line.startswith(f"skipped automation '{chat['name']}' (optional): block "
                                   f"custom-webhook/{chat_name} does not exist") for line in lines), lines
        assert f"created tag concurrency limit '{tag}' = 2" in lines
        assert f"created global concurrency limit '{rate}' = 3, decay 1.0/s" in lines

        # a copy made by other means is removed, changed values are updated in place
        with get_client(sync_client=True) as client:
            copy = client.read_automations_by_name(completed["name"])[0]
            client.create_automation(AutomationCore.model_validate(copy.model_dump()))
            assert len(client.read_automations_by_name(completed["name"])) == 2
        completed["description"] = "changed"
        spec["concurrency"] = {"tags": {tag: 3}, "global": [{"name": rate, "limit": 4, "slot_decay_per_second": 1.0}]}
        lines = apply(_spec_file(tmp_path, spec))
        assert f"updated automation '{completed['name']}' (removed 1 duplicate(s))" in lines
        assert f"updated tag concurrency limit '{tag}' = 3 (was 2)" in lines
        assert f"updated global concurrency limit '{rate}' = 4, decay 1.0/s" in lines
        with get_client(sync_client=True) as client:
            found = client.read_automations_by_name(completed["name"])
            assert len(found) == 1 and found[0].description == "changed"
            assert client.read_concurrency_limit_by_tag(tag).concurrency_limit == 3
            assert client.read_global_concurrency_limit_by_name(rate).limit == 4

        # a payload that would not be valid JSON is refused before anything is sent
        completed["actions"] = [{**completed["actions"][0], "payload": '{"reel": "{{ flow_run.state.message }}"}'}]
        with pytest.raises(AutomationsError, match="valid JSON.*tojson"):
            apply(_spec_file(tmp_path, spec))
    finally:
        _remove([completed["name"], chat["name"]], [tag], [rate])
        _delete_block(Webhook, hook_name)
