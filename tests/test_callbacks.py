"""The per-run callback: signed JSON POST when a run ends, retried against a flaky receiver, and a dead
receiver never changes the run's outcome."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from autoclip.callbacks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from autoclip.config import ClipOptions, get_settings
from autoclip.flows.auto_clip import auto_clip

SECRET = "callback-signing-key-123"
pytestmark = pytest.mark.slow


class Receiver:
    """A loopback HTTP receiver that answers scripted statuses and records what it got."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append({"body": body, "headers": dict(self.headers), "path": self.path})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                location = None
                if isinstance(status, tuple):  # (307, "http://...") redirects
                    status, location = status
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_env(monkeypatch):
    monkeypatch.setenv("AUTOCLIP_HTTP_ALLOW", "127.0.0.1:*")
    monkeypatch.setenv("AUTOCLIP_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("AUTOCLIP_WEBHOOK_SECRET_BLOCK", "no-such-secret-block")
    monkeypatch.setenv("AUTOCLIP_RETRY_BASE_DELAY", "0.05")
    get_settings.cache_clear()


def _run(media, tmp_path, url):
    return auto_clip(sources=[str(media.two_shots)], options=ClipOptions(target_duration=4, width=320, height=180,
                                                                         fps=25),
                     output=str(tmp_path / "reel.mp4"), webhook_url=url, return_state=True)


def test_signature_round_trip():
    body = b'{"a": 1}'
    now = str(int(time.time()))
    signature = sign(SECRET, now, body)
    assert signature.startswith("sha256=") and verify(SECRET, now, body, signature)
    assert not verify(SECRET, now, body + b" ", signature)
    assert not verify(SECRET, str(int(time.time()) - 3600), body, sign(SECRET, str(int(time.time()) - 3600), body))


def test_completed_run_posts_a_signed_body_with_the_reel(prefect_server, callback_env, media, tmp_path):
    receiver = Receiver()
    try:
        state = _run(media, tmp_path, receiver.url)
    finally:
        receiver.close()
    assert state.is_completed()
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert verify(SECRET, got["headers"][TIMESTAMP_HEADER], got["body"], got["headers"][SIGNATURE_HEADER])
    payload = json.loads(got["body"])
    assert payload["state"] == "Completed" and payload["reel"] == state.result().reel
    assert payload["flow_run_id"] == str(state.state_details.flow_run_id)
    assert payload["parameters"]["options"]["target_duration"] == 4 and "webhook_url" not in payload["parameters"]


def test_flaky_receiver_gets_it_on_the_third_try(prefect_server, callback_env, media, tmp_path):
    receiver = Receiver(statuses=[500, 503])
    try:
        state = _run(media, tmp_path, receiver.url)
    finally:
        receiver.close()
    assert state.is_completed()
    assert len(receiver.received) == 3
    assert json.loads(receiver.received[-1]["body"])["state"] == "Completed"


def test_dead_receiver_leaves_the_run_completed_and_records_it(prefect_server, callback_env, media, tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    state = _run(media, tmp_path, dead)
    assert state.is_completed() and (tmp_path / "reel.mp4").exists()
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    deadline = time.monotonic() + 20
    record = []
    while not record and time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            record = [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["auto-clip-callback"])))
                if a.flow_run_id == state.state_details.flow_run_id]
        time.sleep(0.3)
    assert record and "NOT delivered" in record[0].data and "gave up after 3 tries" in record[0].data


def test_callbacks_to_internal_addresses_are_refused(prefect_server, callback_env, media, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCLIP_HTTP_ALLOW", "")
    get_settings.cache_clear()
    receiver = Receiver()
    try:
        state = _run(media, tmp_path, receiver.url)
    finally:
        receiver.close()
    assert state.is_completed() and receiver.received == []


# --- the callback sender: signing required, the downloader's guard (no flow needed) ---------------


def _deliver(url, secret=SECRET):
    from autoclip.callbacks import deliver

    return deliver(url, {"event": "test", "text": "état ✓"}, secret, get_settings())


def test_an_unsigned_callback_is_refused_unless_allowed(callback_env, monkeypatch):
    receiver = Receiver()
    try:
        refused = _deliver(receiver.url, secret=None)
        assert not refused.delivered and refused.attempts == 0 and receiver.received == []
        assert "no signing key" in refused.detail and "autoclip-webhook-secret" in refused.detail
        monkeypatch.setenv("AUTOCLIP_CALLBACK_ALLOW_UNSIGNED", "true")
        get_settings.cache_clear()
        sent = _deliver(receiver.url, secret=None)
    finally:
        receiver.close()
    assert sent.delivered and len(receiver.received) == 1
    got = receiver.received[0]
    assert SIGNATURE_HEADER not in got["headers"] and got["headers"]["Content-Type"] == "application/json"
    assert json.loads(got["body"])["text"] == "état ✓"


def test_a_callback_carries_its_content_type_and_signature(callback_env):
    receiver = Receiver()
    try:
        sent = _deliver(receiver.url)
    finally:
        receiver.close()
    got = receiver.received[0]
    assert sent.delivered and sent.detail == "HTTP 200"
    assert got["headers"]["Content-Type"] == "application/json"
    assert verify(SECRET, got["headers"][TIMESTAMP_HEADER], got["body"], got["headers"][SIGNATURE_HEADER])


def test_every_callback_redirect_is_checked_again(callback_env, monkeypatch):
    receiver = Receiver()
    port = receiver.server.server_address[1]
    monkeypatch.setenv("AUTOCLIP_HTTP_ALLOW", f"127.0.0.1:{port}")  # only the receiver's own port
    get_settings.cache_clear()
    try:
        receiver.statuses = [(307, f"http://127.0.0.1:{port}/moved")]
        moved = _deliver(receiver.url)
        receiver.statuses = [(307, f"http://127.0.0.2:{port}/inside")]
        inside = _deliver(receiver.url)
        with socket.socket() as sock:  # another loopback port: a service the allow-list does not open
            sock.bind(("127.0.0.1", 0))
            other = sock.getsockname()[1]
        receiver.statuses = [(308, f"http://127.0.0.1:{other}/admin")]
        other_port = _deliver(receiver.url)
        receiver.statuses = [(302, f"http://127.0.0.1:{port}/get-instead")]
        see_other = _deliver(receiver.url)
    finally:
        receiver.close()
    assert moved.delivered and [r["path"] for r in receiver.received[:2]] == ["/hook", "/moved"]
    assert not inside.delivered and "redirects to http://127.0.0.2" in inside.detail
    assert not other_port.delivered and f"not {other}" in other_port.detail
    assert not see_other.delivered and "HTTP 302" in see_other.detail
    assert [r["path"] for r in receiver.received[2:]] == ["/hook", "/hook", "/hook"]  # nothing reached beyond
