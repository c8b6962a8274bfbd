"""Test session set-up: a private PREFECT_HOME and result store, one real Prefect server for the whole
session (started here, stopped by PID), and synthetic media made with ffmpeg's lavfi sources."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

# Everything Prefect reads at import time must be set before anything imports prefect.
SESSION_DIR = Path(tempfile.mkdtemp(prefix="autoclip-tests-"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PREFECT_PORT = _free_port()
os.environ.update({
    "PREFECT_HOME": str(SESSION_DIR / "prefect-home"),
    "PREFECT_API_URL": f"http://127.0.0.1:{PREFECT_PORT}/api",
    "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(SESSION_DIR / "prefect-results"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
    "AUTOCLIP_WORKSPACE_DIR": str(SESSION_DIR / "workspaces"),
    "AUTOCLIP_CACHE_DIR": str(SESSION_DIR / "cache"),  # model answers and rendered reels, per session
})
for key in [k for k in os.environ if k.startswith("AUTOCLIP_") and k not in ("AUTOCLIP_WORKSPACE_DIR",
                                                                            "AUTOCLIP_CACHE_DIR")]:
    del os.environ[key]  # a developer's own settings must not change what the tests see

from tests import synth  # noqa: E402  (after the environment is set)

ROOT = Path(__file__).resolve().parent.parent
SHARED_MEDIA = ROOT.parent / "shared" / "media"


@pytest.fixture(scope="session")
def prefect_server():
    """A real Prefect server on loopback for the session; yields its API URL."""
    env = dict(os.environ)
    log = open(SESSION_DIR / "prefect-server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(PREFECT_PORT)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = os.environ["PREFECT_API_URL"]
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"Prefect server exited: see {SESSION_DIR / 'prefect-server.log'}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Prefect server did not become healthy within 120 s")
            time.sleep(0.5)
        yield url
    finally:
        _drain_prefect_workers()
        stop_group(proc)
        log.close()


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started with `start_new_session=True` and everything it started, by its group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _drain_prefect_workers() -> None:
    """Send what Prefect's background workers still hold before the server goes away (quiet teardown)."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)
    except Exception:  # noqa: BLE001 - teardown must go on
        pass


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(autouse=True)
def fresh_settings():
    """Settings are cached per process; tests that change AUTOCLIP_* see their change, then it is undone."""
    from autoclip.config import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> synth.MediaSet:
    return synth.make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def shared_media() -> Path:
    if not (SHARED_MEDIA / "autoeditor_example_speech_en.mp4").exists():
        pytest.skip(f"real media not found at {SHARED_MEDIA} (the workplace's shared/media folder)")
    return SHARED_MEDIA


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto) on loopback for the session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


S3_KEYS = {"AWS_ACCESS_KEY_ID": "AKIATESTKEY", "AWS_SECRET_ACCESS_KEY": "test-secret-key-value"}


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Settings pointing s3:// and oss:// at the moto server (path-style), with a fresh bucket."""
    import uuid

    import s3fs

    for name, value in {**S3_KEYS, "AUTOCLIP_S3_ENDPOINT_URL": s3_server, "AUTOCLIP_S3_REGION": "eu-west-1",
                        "AUTOCLIP_S3_ADDRESSING": "path", "AUTOCLIP_OSS_ENDPOINT": s3_server,
                        "OSS_ACCESS_KEY_ID": S3_KEYS["AWS_ACCESS_KEY_ID"],
                        "OSS_ACCESS_KEY_SECRET": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
                        "AUTOCLIP_OSS_ADDRESSING": "path"}.items():
        monkeypatch.setenv(name, value)
    bucket = f"bkt-{uuid.uuid4().hex[:10]}"
    fs = s3fs.S3FileSystem(key=S3_KEYS["AWS_ACCESS_KEY_ID"], secret=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
                           endpoint_url=s3_server, client_kwargs={"region_name": "eu-west-1"},
                           skip_instance_cache=True, use_listings_cache=False)
    fs.mkdir(bucket)
    from autoclip.config import get_settings

    get_settings.cache_clear()
    return fs, bucket


@pytest.fixture(scope="session")
def sample_speech() -> Path:
    """The public-domain speech sample the repository ships."""
    return ROOT / "samples" / "autoeditor_example_speech_en.mp4"


@pytest.fixture(scope="session")
def mandarin_voice():
    """The Mandarin test voice (tests/mandarin.py), fetched and checked on first use; skips without it."""
    from tests import mandarin

    try:
        return mandarin.Voice(mandarin.voice_files())
    except mandarin.VoiceUnavailable as exc:
        pytest.skip(f"Mandarin test voice unavailable: {exc}")


@pytest.fixture(scope="session")
def chinese_talk(mandarin_voice, tmp_path_factory):
    """A ~34 s Chinese talk on making coffee: six sentences with pauses, lavfi pictures."""
    from tests import mandarin

    return mandarin.chinese_talk(tmp_path_factory.mktemp("zh-talk"), mandarin_voice)


@pytest.fixture(scope="session")
def mixed_talk(mandarin_voice, tmp_path_factory):
    """A ~15 s clip alternating Chinese (the test voice) and English (espeak-ng) sentences."""
    from benchmarks.quality import ensure_espeak
    from tests import mandarin

    if not ensure_espeak():
        pytest.skip("espeak-ng is not installed and could not be (apt-get install espeak-ng)")
    return mandarin.mixed_talk(tmp_path_factory.mktemp("zh-en-talk"), mandarin_voice)


@pytest.fixture(scope="module")
def standin():
    """The DashScope stand-in (the SDK's HTTP and websocket protocol) on loopback, one per test module."""
    from tests.dashscope_standin import StandIn

    with StandIn() as server:
        yield server
