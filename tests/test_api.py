"""The HTTP service end to end: `autoclip api serve` (uvicorn on loopback) in front of the session's real
Prefect server, the `auto-clip` deployment and a real process worker. Upload -> task -> progress ->
download for local storage, keys and isolation, an oversize upload cut off mid-stream, a cancelled task."""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import av
import pytest

from tests import synth
from tests.conftest import _free_port, stop_group

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


# --- processes ------------------------------------------------------------------------------------


def _prefect(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ))


_stop = stop_group


class Api:
    """One `autoclip api serve` process and a tiny client for it."""

    def __init__(self, env: dict[str, str], log: Path):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.data_dir = Path(self.env["AUTOCLIP_API_DATA_DIR"])
        self.log = log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "autoclip.cli", "api", "serve", "--port", str(self.port)],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/api/v1/openapi.json", timeout=2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not start: {log.read_text()[-2000:]}")
                time.sleep(0.3)

    def stop(self):
        _stop(self.proc)
        self.log.close()

    def key(self, name: str) -> str:
        made = subprocess.run([sys.executable, "-m", "autoclip.cli", "api", "keys", "create", name], env=self.env,
                              capture_output=True, text=True, timeout=300)
        assert made.returncode == 0, made.stderr
        return next(line.split()[1] for line in made.stdout.splitlines() if line.startswith("key:"))

    def call(self, method: str, path: str, key: str | None, body=None, headers=None) -> tuple[int, dict, dict]:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
        sent = {"Content-Type": "application/json"} if isinstance(body, (dict, list)) else {}
        if key:
            sent["Authorization"] = f"Bearer {key}"
        sent.update(headers or {})
        request = urllib.request.Request(self.base + path, data=data, headers=sent, method=method)
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                raw = reply.read()
                return reply.status, dict(reply.headers), (json.loads(raw) if reply.headers.get_content_type()
                                                           == "application/json" else {"bytes": raw})
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), json.loads(exc.read() or b"{}")

    def upload(self, key: str, files: list[tuple[str, bytes]]) -> tuple[int, dict]:
        boundary = uuid.uuid4().hex
        body = b"".join(
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n" for name, data in files)
        body += f"--{boundary}--\r\n".encode()
        status, _, reply = self.call("POST", "/api/v1/videos/upload", key, body,
                                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return status, reply

    def wait(self, key: str, task_id: str, until: tuple[str, ...], timeout: float = 400) -> dict:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            status, _, task = self.call("GET", f"/api/v1/tasks/{task_id}", key)
            assert status == 200, task
            if not seen or seen[-1] != task["stage"]:
                seen.append(task["stage"])
            if task["state_type"] in until:
                task["stages_seen"] = seen
                return task
            time.sleep(0.5)
        raise AssertionError(f"task {task_id} did not reach {until} in {timeout} s (stages: {seen})")


@pytest.fixture(scope="module")
def service_dirs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("service")
    return {"AUTOCLIP_API_DATA_DIR": str(root / "data"), "AUTOCLIP_OUTPUT_ROOT": str(root / "outputs")}


@pytest.fixture(scope="module")
def worker(prefect_server, service_dirs, tmp_path_factory):
    """The auto-clip deployment (prefect.yaml) and a process worker polling for its runs."""
    assert _prefect("work-pool", "create", "auto-clip-process", "--type", "process", "--overwrite").returncode == 0
    deployed = _prefect("deploy", "--name", "auto-clip")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "auto-clip-process"],
                                cwd=ROOT, env={**os.environ, **service_dirs, "PREFECT_WORKER_QUERY_SECONDS": "1",
                                               "PREFECT_WORKER_PREFETCH_SECONDS": "2"},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield log
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def api(prefect_server, service_dirs, tmp_path_factory):
    server = Api(service_dirs, tmp_path_factory.mktemp("api") / "api.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    return [synth.two_shots(folder / "a.mp4"),
            synth.lavfi(folder / "b.mov", "testsrc2=s=320x240:r=25", 4, audio="sine=f=660:d=4"),
            synth.lavfi(folder / "c.mkv", "smptebars=s=320x180:r=25", 4, audio="sine=f=330:d=4")]


# --- tests ----------------------------------------------------------------------------------------


def test_upload_start_follow_and_download_with_local_storage(api, worker, clips, service_dirs):
    key = api.key("alice")
    started = time.monotonic()
    status, uploaded = api.upload(key, [(p.name, p.read_bytes()) for p in clips]
                                  + [("notes.mp4", b"just some text, not a video at all\n"),
                                     ("cover.png", b"\x89PNG\r\n\x1a\n...")])
    assert status == 200, uploaded
    results = {r["filename"]: r for r in uploaded["results"]}
    assert [results[p.name]["ok"] for p in clips] == [True, True, True]
    assert results["notes.mp4"]["error"].startswith("does not start like a video file")
    assert results["cover.png"]["error"].startswith("unsupported format '.png'")
    first = results["a.mp4"]["video"]
    assert abs(first["duration"] - 6.0) < 0.1 and first["codec"] == "h264" and first["size"] == clips[0].stat().st_size
    assert not list(Path(service_dirs["AUTOCLIP_API_DATA_DIR"], "videos", ".staging").iterdir())

    status, _, task = api.call("POST", "/api/v1/tasks/create", key, {
        "video_ids": [v["video_id"] for v in uploaded["videos"]], "duration": 8, "aspect": "16:9"})
    assert status == 200, task
    done = api.wait(key, task["task_id"], ("COMPLETED", "FAILED", "CRASHED"))
    elapsed = time.monotonic() - started
    assert done["state_type"] == "COMPLETED", done["errors"]
    assert done["percent"] == 100 and len(done["stages_seen"]) >= 2, done["stages_seen"]
    assert done["clips"] and all(c["reason"] and c["video_id"] in task["video_ids"] for c in done["clips"])
    assert abs(sum(c["duration"] for c in done["clips"]) - 8) < 1.0
    # every video is accounted for, in the user's own file names (stored ids are no names for a person)
    assert {c["video_id"] for c in done["clips"]} | {x["video_id"] for x in done["left_out"]} == set(task["video_ids"])
    said = json.dumps([done["title"], done["notes"], [c["reason"] for c in done["clips"]], done["left_out"]])
    assert not re.search(r"[0-9a-f]{16}\.mp4", said), said
    assert set(done["downloads"]) >= {"reel", "plan"}
    # the output sits under the configured root, in a folder named after the task
    reel_file = Path(service_dirs["AUTOCLIP_OUTPUT_ROOT"]) / task["task_id"] / "reel.mp4"
    assert reel_file.is_file()

    status, headers, whole = api.call("GET", done["downloads"]["reel"], None)
    assert status == 200 and headers["content-type"] == "video/mp4"
    assert whole["bytes"] == reel_file.read_bytes()
    status, headers, part = api.call("GET", done["downloads"]["reel"], None, headers={"Range": "bytes=100-199"})
    assert status == 206 and part["bytes"] == whole["bytes"][100:200]
    assert headers["content-range"] == f"bytes 100-199/{len(whole['bytes'])}"
    status, headers, head = api.call("HEAD", done["downloads"]["reel"], None)  # size and type, no body
    assert status == 200 and int(headers["content-length"]) == len(whole["bytes"]) and head["bytes"] == b""
    with av.open(str(reel_file)) as reel:
        assert abs(float(reel.duration / 1e6) - 8) < 1.0
    status, _, plan = api.call("GET", done["downloads"]["plan"], None)
    assert status == 200 and len(plan["clips"]) == len(done["clips"])
    tampered = done["downloads"]["reel"].replace("sig=", "sig=0")
    assert api.call("GET", tampered, None)[0] == 403
    print(f"\nupload of 3 videos to a downloadable reel: {elapsed:.1f} s")

    status, _, page = api.call("GET", "/api/v1/tasks?page=1&page_size=5", key)
    assert status == 200 and page["total"] == 1 and page["tasks"][0]["task_id"] == task["task_id"]

    # a budget too short for a moment of every video: those left out are named, with the planner's reason
    status, _, short = api.call("POST", "/api/v1/tasks/create", key, {
        "video_ids": [v["video_id"] for v in uploaded["videos"]], "duration": 2})
    short = api.wait(key, short["task_id"], ("COMPLETED", "FAILED", "CRASHED"))
    assert short["state_type"] == "COMPLETED", short["errors"]
    planned_out = [x for x in short["left_out"] if x["stage"] == "planning"]
    assert planned_out and {x["filename"] for x in planned_out} <= {p.name for p in clips}, short["left_out"]
    assert all(x["filename"] in x["reason"] for x in planned_out), planned_out
    assert not re.search(r"[0-9a-f]{16}\.mp4", json.dumps(short["notes"])), short["notes"]


def test_keys_see_only_their_own_videos_and_tasks(api, worker, clips):
    alice, bob = api.key("alice-2"), api.key("bob")
    status, uploaded = api.upload(alice, [(clips[0].name, clips[0].read_bytes())])
    video_id = uploaded["videos"][0]["video_id"]
    status, _, task = api.call("POST", "/api/v1/tasks/create", alice, {"video_ids": [video_id], "duration": 3})
    assert status == 200, task
    task_id = task["task_id"]

    assert api.call("GET", f"/api/v1/tasks/{task_id}", bob)[0] == 404
    assert api.call("POST", f"/api/v1/tasks/{task_id}/cancel", bob)[0] == 404
    assert api.call("GET", "/api/v1/tasks", bob)[2]["total"] == 0
    status, _, refused = api.call("POST", "/api/v1/tasks/create", bob, {"video_ids": [video_id], "duration": 3})
    assert status == 404 and refused["detail"] == f"no such video: {video_id}"
    assert api.call("GET", f"/api/v1/tasks/{task_id}", None)[0] == 401
    assert api.call("GET", f"/api/v1/tasks/{task_id}", "ack_not-a-key")[0] == 401
    # paths are not accepted anywhere: only ids
    status, _, _ = api.call("POST", "/api/v1/tasks/create", alice, {"video_ids": ["/etc/passwd"], "duration": 3})
    assert status == 404
    for bad in (float("nan"), float("inf")):  # JSON cannot echo these back: the refusal was a 500
        status, _, refused = api.call("POST", "/api/v1/tasks/create", alice, {"video_ids": [video_id], "duration": bad})
        assert status == 422 and "finite" in json.dumps(refused), refused

    keys = subprocess.run([sys.executable, "-m", "autoclip.cli", "api", "keys", "list"], env=api.env,
                          capture_output=True, text=True, timeout=300).stdout
    bob_id = next(line.split()[0] for line in keys.splitlines() if " bob " in line)
    revoked = subprocess.run([sys.executable, "-m", "autoclip.cli", "api", "keys", "revoke", bob_id], env=api.env,
                             capture_output=True, text=True, timeout=300)
    assert revoked.returncode == 0
    assert api.call("GET", "/api/v1/tasks", bob)[0] == 401
    assert bob not in Path(api.env["AUTOCLIP_API_DATA_DIR"], "api.sqlite3").read_bytes().decode("latin-1")
    api.wait(alice, task_id, ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"))


def test_a_cancelled_task_stops_and_leaves_no_reel(api, worker, clips, service_dirs):
    key = api.key("carol")
    status, uploaded = api.upload(key, [(p.name, p.read_bytes()) for p in clips])
    status, _, task = api.call("POST", "/api/v1/tasks/create", key, {
        "video_ids": [v["video_id"] for v in uploaded["videos"]], "duration": 8})
    assert status == 200, task
    status, _, cancelled = api.call("POST", f"/api/v1/tasks/{task['task_id']}/cancel", key)
    assert status == 200, cancelled
    final = api.wait(key, task["task_id"], ("CANCELLED", "COMPLETED", "FAILED", "CRASHED"), timeout=120)
    assert final["state_type"] == "CANCELLED" and final["downloads"] == {}
    time.sleep(3)  # a worker that had started it would have published by now
    assert not (Path(service_dirs["AUTOCLIP_OUTPUT_ROOT"]) / task["task_id"] / "reel.mp4").exists()


def test_a_running_task_is_stopped_by_its_worker(api, worker, clips, service_dirs):
    key = api.key("dan")
    _, uploaded = api.upload(key, [(p.name, p.read_bytes()) for p in clips])
    status, _, task = api.call("POST", "/api/v1/tasks/create", key, {
        "video_ids": [v["video_id"] for v in uploaded["videos"]], "duration": 8, "aspect": "1:1"})
    assert status == 200, task
    running = api.wait(key, task["task_id"], ("RUNNING", "COMPLETED", "FAILED", "CRASHED"), timeout=120)
    assert running["state_type"] == "RUNNING", running
    started = time.monotonic()
    status, _, cancelling = api.call("POST", f"/api/v1/tasks/{task['task_id']}/cancel", key)
    assert status == 200 and cancelling["state_type"] in ("CANCELLING", "CANCELLED", "COMPLETED"), cancelling
    final = api.wait(key, task["task_id"], ("CANCELLED", "COMPLETED", "FAILED", "CRASHED"), timeout=180)
    if final["state_type"] == "COMPLETED":
        pytest.skip("the run finished before the worker stopped it (a very fast machine)")
    assert final["state_type"] == "CANCELLED", final
    print(f"\nrunning task cancelled within {time.monotonic() - started:.1f} s")
    assert not (Path(service_dirs["AUTOCLIP_OUTPUT_ROOT"]) / task["task_id"] / "reel.mp4").exists()


def _trigger(prefect_server: str, parameters: dict) -> dict:
    """What anyone who reaches the Prefect API can do: start a run of the deployment with any parameters."""
    def call(url, body=None):
        for attempt in range(6):  # Prefect answers 503 while its SQLite database is busy: retry, as its client does
            request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                             headers={"Content-Type": "application/json"},
                                             method="POST" if body is not None else "GET")
            try:
                with urllib.request.urlopen(request, timeout=30) as reply:
                    return json.loads(reply.read())
            except urllib.error.HTTPError as exc:
                if exc.code != 503 or attempt == 5:
                    raise
                time.sleep(1 + attempt)

    deployment = call(f"{prefect_server}/deployments/name/auto-clip/auto-clip")
    return call(f"{prefect_server}/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters})


def _final_state(run_id: str, timeout: float = 300):
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_id).state
        if state and state.is_final():
            return state
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish in {timeout} s")


def test_deployment_runs_read_and_write_only_under_the_roots(prefect_server, api, worker, clips, service_dirs,
                                                             tmp_path):
    small = {"target_duration": 3, "width": 320, "height": 180, "fps": 25}
    outside = _trigger(prefect_server, {"sources": [str(clips[0])], "output": str(tmp_path / "x.mp4"),
                                        "options": small})
    escape = _trigger(prefect_server, {"sources": ["../../../etc/hosts.mp4"], "output": "x.mp4", "options": small})
    key = api.key("roots")
    _, uploaded = api.upload(key, [(clips[0].name, clips[0].read_bytes())])
    stored = next(Path(service_dirs["AUTOCLIP_API_DATA_DIR"], "videos").rglob(
        uploaded["videos"][0]["video_id"] + ".*"))
    sneaky = _trigger(prefect_server, {"sources": [str(stored)], "output": "/tmp/../etc/reel.mp4", "options": small})
    relative = _trigger(prefect_server, {"sources": [str(stored)], "output": "quick/reel.mp4", "options": small})

    state = _final_state(outside["id"])
    assert state.is_failed() and f"{clips[0]}: is outside the source roots" in state.message
    state = _final_state(escape["id"])
    assert state.is_failed() and "is outside the source roots" in state.message
    state = _final_state(sneaky["id"])
    assert state.is_failed() and "/tmp/../etc/reel.mp4: is outside the output root" in state.message
    state = _final_state(relative["id"])
    landed = Path(service_dirs["AUTOCLIP_OUTPUT_ROOT"]).resolve() / "quick" / "reel.mp4"
    assert state.is_completed(), state.message
    assert state.message == str(landed) and landed.is_file()  # not in the worker's working directory
    assert not (ROOT / "quick").exists() and not (tmp_path / "x.mp4").exists()


@pytest.fixture(scope="module")
def small_api(prefect_server, tmp_path_factory):
    """A second service with a 300 kB cap and at most 2 files a request (request cap about 1.6 MB)."""
    root = tmp_path_factory.mktemp("small")
    files_port = _free_port()  # a loopback file server for import-url, allow-listed on its port only
    server = Api({"AUTOCLIP_API_DATA_DIR": str(root / "data"), "AUTOCLIP_OUTPUT_ROOT": str(root / "out"),
                  "AUTOCLIP_MAX_VIDEO_SIZE": "300000", "AUTOCLIP_API_MAX_FILES": "2",
                  "AUTOCLIP_API_RATE_LIMIT": "30", "AUTOCLIP_HTTP_ALLOW": f"127.0.0.1:{files_port}"},
                 root / "api.log")
    server.files_port = files_port
    try:
        yield server, root / "data"
    finally:
        server.stop()


def test_import_url_uses_the_guarded_downloader(small_api, tmp_path):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    api, data = small_api
    key = api.key("importer")
    synth.lavfi(tmp_path / "remote.mp4", "testsrc2=s=160x90:r=10", 2)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    files = ThreadingHTTPServer(("127.0.0.1", api.files_port), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    try:
        status, _, video = api.call("POST", "/api/v1/videos/import-url", key,
                                    {"url": f"http://127.0.0.1:{api.files_port}/remote.mp4"})
        assert status == 200, video
        assert video["filename"] == "remote.mp4" and abs(video["duration"] - 2) < 0.2
        status, _, refused = api.call("POST", "/api/v1/videos/import-url", key,
                                      {"url": f"http://127.0.0.1:{api.port}/api/v1/openapi.json"})
        assert status == 400 and f"not {api.port}" in refused["detail"]  # the API's own port is not opened
        status, _, refused = api.call("POST", "/api/v1/videos/import-url", key,
                                      {"url": "http://169.254.169.254/latest/meta-data"})
        assert status == 400 and "cloud metadata address" in refused["detail"]
    finally:
        files.shutdown()
        files.server_close()
    assert not list((data / "videos" / ".staging").iterdir())


def _stored(data: Path) -> list[Path]:
    return [p for p in (data / "videos").rglob("*") if p.is_file()]


def test_an_oversize_file_is_cut_off_and_the_others_kept(small_api, tmp_path):
    api, data = small_api
    key = api.key("dave")
    big = b"\x00\x00\x00\x18ftypisom" + os.urandom(1_000_000)
    small = synth.lavfi(tmp_path / "small.mp4", "testsrc2=s=160x90:r=10", 2)
    before = set(_stored(data))
    status, reply = api.upload(key, [("big.mp4", big), (small.name, small.read_bytes())])
    assert status == 200, reply
    first, second = reply["results"]
    assert not first["ok"] and first["error"] == ("is over the limit of 300000 bytes (AUTOCLIP_MAX_VIDEO_SIZE); "
                                                  "the upload was cut off")
    assert second["ok"], second
    kept = set(_stored(data)) - before
    assert len(kept) == 1 and kept.pop().stat().st_size == small.stat().st_size


def test_a_file_that_refuses_to_seek_and_an_audio_file_get_their_own_answers(small_api, tmp_path):
    """A Sorenson FLV made probing raise PermissionError: the upload answered 500 and stranded the other
    files in .staging. Now it is kept, the song with album art is refused as audio only, nothing is left."""
    from autoclip.media.ffmpeg import run_ffmpeg

    api, data = small_api
    key = api.key("frank")
    flv, cover, song = tmp_path / "sorenson.flv", tmp_path / "cover.png", tmp_path / "song.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x90:r=10:d=3", "-f", "lavfi", "-i", "sine=d=3",
                "-c:v", "flv", "-c:a", "mp3", "-ar", "44100", str(flv)], what="a Sorenson FLV")
    run_ffmpeg(["-f", "lavfi", "-i", "color=red:s=64x64", "-frames:v", "1", str(cover)], what="a cover")
    run_ffmpeg(["-f", "lavfi", "-i", "sine=d=3", "-i", str(cover), "-map", "0", "-map", "1", "-c:a", "aac",
                "-c:v", "png", "-disposition:v", "attached_pic", str(song)], what="a song with album art")
    before = set(_stored(data))
    status, reply = api.upload(key, [(song.name, song.read_bytes()), (flv.name, flv.read_bytes())])
    assert status == 200, reply
    refused, kept = reply["results"]
    assert not refused["ok"] and refused["error"] == ("has no video stream (an audio-only file with a cover "
                                                      "picture); a reel needs pictures")
    assert kept["ok"] and kept["video"]["codec"] == "flv" and abs(kept["video"]["duration"] - 3) < 0.1, kept
    assert [p.stat().st_size for p in set(_stored(data)) - before] == [flv.stat().st_size]
    assert not list((data / "videos" / ".staging").iterdir())


def test_an_oversize_request_is_refused_mid_stream_with_nothing_left(small_api):
    api, data = small_api
    key = api.key("erin")
    before = _stored(data)
    with socket.create_connection(("127.0.0.1", api.port), timeout=30) as sock:
        boundary = "b0undary"
        sock.sendall((f"POST /api/v1/videos/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
                      f"Content-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n\r\n"
                      ).encode())
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"endless.mp4\"\r\n\r\n"
                ).encode() + b"\x00\x00\x00\x18ftypisom"
        chunk = os.urandom(64 * 1024)
        sent, answer = 0, b""
        for n in range(20 * 1024 * 1024 // len(chunk)):  # up to 20 MB, far over the request cap
            data_out = head + chunk if n == 0 else chunk
            try:
                sock.sendall(f"{len(data_out):x}\r\n".encode() + data_out + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(data_out)
            if select.select([sock], [], [], 0)[0]:
                break
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in answer:
                got = sock.recv(4096)
                if not got:
                    break
                answer += got
        except ConnectionResetError:
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # refused while the client was still sending (the rest of the 20 MB never went out; what was sent
    # beyond the 1.6 MB cap sat in loopback socket buffers)
    assert sent < 12 * 1024 * 1024, sent
    assert _stored(data) == before and not list((data / "videos" / ".staging").iterdir())
    # an announced size over the cap is refused before any byte of the body is read
    status, _, reply = api.call("POST", "/api/v1/videos/upload", key, b"", {
        "Content-Type": "multipart/form-data; boundary=x", "Content-Length": "99999999"})
    assert status == 413 and "announces 99999999 bytes" in reply["detail"]


def test_request_rate_is_limited_per_key(small_api):
    api, _ = small_api
    key, other = api.key("frank"), api.key("grace")
    codes = [api.call("GET", "/api/v1/tasks", key)[0] for _ in range(31)]
    assert codes[:30] == [200] * 30 and codes[30] == 429
    assert api.call("GET", "/api/v1/tasks", other)[0] == 200  # another key has its own budget


def test_docs_and_the_page_are_served(api):
    assert api.call("GET", "/api/v1/docs", None)[0] == 200
    assert api.call("GET", "/api/v1/redoc", None)[0] == 200
    status, _, spec = api.call("GET", "/api/v1/openapi.json", None)
    assert {"/api/v1/videos/upload", "/api/v1/videos/import-url", "/api/v1/tasks/create", "/api/v1/tasks/{task_id}",
            "/api/v1/tasks/{task_id}/cancel", "/api/v1/tasks"} <= set(spec["paths"])
    status, headers, page = api.call("GET", "/", None)
    assert status == 200 and b'id="files"' in page["bytes"]
    assert "access-control-allow-origin" not in {k.lower() for k in
                                                 api.call("GET", "/api/v1/openapi.json", None,
                                                          headers={"Origin": "https://evil.example"})[1]}


# --- the web page in a real browser ---------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REAL_VIDEOS = ["autocut_test002_zh_en.mov", "pyscenedetect_issue134_goldeneye_rotated.mp4",
               "autoeditor_example_speech_en.mp4"]


@pytest.fixture(scope="module")
def real_videos() -> Path:
    """../shared/media, or the folder AUTO_CLIP_SHARED_MEDIA names (a worktree elsewhere)."""
    from tests.conftest import SHARED_MEDIA

    folder = Path(os.environ.get("AUTO_CLIP_SHARED_MEDIA", SHARED_MEDIA))
    if not all((folder / name).exists() for name in REAL_VIDEOS):
        pytest.skip(f"real media not found at {folder} (the workplace's shared/media folder)")
    return folder


def test_the_web_page_uploads_three_videos_and_plays_the_reel(api, worker, real_videos):
    shared_media = real_videos
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    key = api.key("browser")
    started = time.monotonic()
    with sync_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto(api.base + "/")
            page.fill("#api-key", key)
            page.dispatch_event("#api-key", "change")
            page.set_input_files("#files", [str(shared_media / name) for name in REAL_VIDEOS])
            page.wait_for_function("document.querySelectorAll('#uploads li.ok').length === 3", timeout=120_000)
            page.set_input_files("#files", [str(shared_media / REAL_VIDEOS[0])])  # one too many, then removed
            page.wait_for_function("document.querySelectorAll('#uploads li.ok').length === 4", timeout=120_000)
            page.locator("#uploads li.ok").nth(3).locator("button.remove").click()
            assert page.locator("#uploads li.ok").count() == 3
            page.select_option("#duration", "15")
            page.select_option("#aspect", "9:16")
            page.click("#start")
            page.wait_for_function("document.getElementById('reel').duration > 0", timeout=600_000)
            duration = page.evaluate("document.getElementById('reel').duration")
            size = page.evaluate("[document.getElementById('reel').videoWidth, document.getElementById('reel').videoHeight]")
            rows = page.locator("#clips tbody tr").count()
            reasons = page.locator("#clips tbody tr td:last-child").all_inner_texts()
            stages = page.locator("#stages li").all_inner_texts()
            links = {kind: page.locator(f"#download-{kind}").count() for kind in ("reel", "plan", "subtitles")}
            task_id = page.evaluate("state.task")
            assert page.locator("#message").inner_text() == ""
        finally:
            browser.close()
    elapsed = time.monotonic() - started
    assert abs(duration - 15) < 1.5, duration
    assert size[0] < size[1]  # 9:16 as chosen on the page
    assert rows >= 1 and all(reason.strip() for reason in reasons)
    assert len(stages) >= 2, stages
    assert links["reel"] == 1 and links["plan"] == 1
    assert len(api.call("GET", f"/api/v1/tasks/{task_id}", key)[2]["video_ids"]) == 3  # the removed one is not in
    print(f"\nbrowser: 3 real videos uploaded, reel of {duration:.1f} s playing after {elapsed:.1f} s; stages {stages}")
