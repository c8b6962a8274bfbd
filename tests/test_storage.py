"""Object sources and outputs against a real S3-compatible server (moto) on 127.0.0.1.

oss2 speaks OSS's own dialect; against moto its single-object calls (head, get, put, resumable download of
a small object) and sign_url work, but listing and multipart do not (moto answers in S3 XML). So oss://
prefix listing here goes through the S3 route (path-style addressing), which is what OSS's S3-compatible
API serves too; the oss2 listing branch (virtual-hosted OSS) is the small piece this suite cannot reach.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from autoclip.config import get_settings
from autoclip.errors import InputError, StorageError
from autoclip.sources import expand_sources, ingest
from autoclip.storage.objects import presign
from autoclip.storage.outputs import destination, publish


def test_s3_object_and_prefix_are_imported(s3_env, media, tmp_path):
    fs, bucket = s3_env
    fs.put_file(str(media.two_shots), f"{bucket}/in/a.mp4")
    fs.put_file(str(media.anamorphic), f"{bucket}/in/sub/b.mov")
    fs.pipe_file(f"{bucket}/in/notes.txt", b"not a video")
    found, rejected = expand_sources([f"s3://{bucket}/in/", f"s3://{bucket}/in/a.mp4"], get_settings())
    assert found == [f"s3://{bucket}/in/a.mp4", f"s3://{bucket}/in/sub/b.mov"] and rejected == []
    video = ingest(f"s3://{bucket}/in/sub/b.mov", 3, tmp_path, get_settings())
    assert Path(video.path).read_bytes() == media.anamorphic.read_bytes()
    assert video.source == f"s3://{bucket}/in/sub/b.mov" and video.info.display_width == 512


def test_oss_object_through_oss2(s3_env, media, tmp_path):
    fs, bucket = s3_env
    fs.put_file(str(media.two_shots), f"{bucket}/clips/x.mp4")
    video = ingest(f"oss://{bucket}/clips/x.mp4", 0, tmp_path, get_settings())
    assert Path(video.path).read_bytes() == media.two_shots.read_bytes()
    found, _ = expand_sources([f"oss://{bucket}/clips/"], get_settings())
    assert found == [f"oss://{bucket}/clips/x.mp4"]


def test_missing_objects_and_empty_prefixes_are_reported(s3_env, tmp_path):
    fs, bucket = s3_env
    with pytest.raises(InputError) as caught:
        ingest(f"s3://{bucket}/nope.mp4", 0, tmp_path, get_settings())
    assert f"s3://{bucket}/nope.mp4: no such object" in str(caught.value)
    with pytest.raises(InputError, match="unsupported format '.txt'"):
        ingest(f"s3://{bucket}/notes.txt", 0, tmp_path, get_settings())
    found, rejected = expand_sources([f"s3://{bucket}/empty/"], get_settings())
    assert found == [] and "holds no videos" in rejected[0].reason


def test_s3_backend_uploads_and_presigns(s3_env, tmp_path, monkeypatch):
    fs, bucket = s3_env
    monkeypatch.setenv("AUTOCLIP_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("AUTOCLIP_OUTPUT_URI", f"s3://{bucket}/reels")
    get_settings.cache_clear()
    made = tmp_path / "work.mp4"
    made.write_bytes(b"reel bytes")
    target = destination("out/reel.mp4", get_settings())
    assert target.remote == f"s3://{bucket}/reels/reel.mp4" and target.local is None
    done = publish(made, target, get_settings())
    assert done.uri == f"s3://{bucket}/reels/reel.mp4" and fs.cat_file(f"{bucket}/reels/reel.mp4") == b"reel bytes"
    with urllib.request.urlopen(done.url, timeout=10) as reply:  # the presigned URL really serves it
        assert reply.read() == b"reel bytes"
    assert not made.exists()  # the workspace copy goes; the object is the result
    assert target.sibling(".plan.json").remote == f"s3://{bucket}/reels/reel.plan.json"


def test_hybrid_keeps_the_local_copy_and_uploads(s3_env, tmp_path, monkeypatch):
    fs, bucket = s3_env
    monkeypatch.setenv("AUTOCLIP_STORAGE_BACKEND", "hybrid")
    monkeypatch.setenv("AUTOCLIP_OUTPUT_URI", f"oss://{bucket}/reels/")
    get_settings.cache_clear()
    made = tmp_path / "work.mp4"
    made.write_bytes(b"hybrid reel")
    done = publish(made, destination(str(tmp_path / "out" / "reel.mp4"), get_settings()), get_settings())
    assert Path(done.local).read_bytes() == b"hybrid reel"
    assert fs.cat_file(f"{bucket}/reels/reel.mp4") == b"hybrid reel"
    assert "Signature=" in done.url  # oss2 sign_url


def test_failed_upload_is_retried_then_reported_and_the_local_result_kept(s3_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCLIP_STORAGE_BACKEND", "hybrid")
    monkeypatch.setenv("AUTOCLIP_OUTPUT_URI", "s3://no-such-bucket-here/reels")
    monkeypatch.setenv("AUTOCLIP_RETRY_BASE_DELAY", "0.01")
    get_settings.cache_clear()
    made = tmp_path / "work.mp4"
    made.write_bytes(b"keep me")
    with pytest.raises(StorageError, match="local result is kept"):
        publish(made, destination(str(tmp_path / "reel.mp4"), get_settings()), get_settings())
    assert (tmp_path / "reel.mp4").read_bytes() == b"keep me"


def test_object_backend_without_an_output_uri_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("AUTOCLIP_STORAGE_BACKEND", "oss")
    get_settings.cache_clear()
    with pytest.raises(StorageError, match="needs AUTOCLIP_OUTPUT_URI"):
        destination("reel.mp4", get_settings())


def test_presigned_oss_url_for_paraformer(s3_env, tmp_path):
    fs, bucket = s3_env
    fs.pipe_file(f"{bucket}/audio/a.wav", b"RIFF....")
    url = presign(f"oss://{bucket}/audio/a.wav", get_settings().object_store("oss"), 600)
    assert url.startswith("http://127.0.0.1:") and "Expires=" in url and "OSSAccessKeyId=" in url


@pytest.fixture
def web_folder(tmp_path):
    """A plain loopback web server over a folder (for an http:// source in a mixed run)."""
    import functools
    import http.server
    import threading

    folder = tmp_path / "web"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_mixed_sources_to_s3_with_results_in_the_bucket_and_a_cache_hit_on_a_fresh_prefect_home(
        s3_env, media, sample_speech, web_folder, tmp_path):
    import os
    import subprocess
    import sys

    fs, bucket = s3_env
    folder, base = web_folder
    fs.put_file(str(media.anamorphic), f"{bucket}/in/tv.mp4")
    (folder / "phone.mp4").write_bytes(media.rotated.read_bytes())
    sources = [str(sample_speech), f"s3://{bucket}/in/tv.mp4", f"{base}/phone.mp4"]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # a temporary server per run
    env.update({"AUTOCLIP_STORAGE_BACKEND": "s3", "AUTOCLIP_OUTPUT_URI": f"s3://{bucket}/reels",
                "AUTOCLIP_HTTP_ALLOW": "127.0.0.1:*", "AUTOCLIP_WORKSPACE_DIR": str(tmp_path / "ws")})

    def run(home: str):
        env_run = dict(env, PREFECT_HOME=str(tmp_path / home),
                       PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(tmp_path / home / "results"))
        return subprocess.run([sys.executable, "-m", "autoclip.cli", "run", *sources, "--duration", "12",
                               "-o", "trip.mp4", "--width", "320", "--height", "180"],
                              capture_output=True, text=True, timeout=600, env=env_run, cwd=tmp_path)

    first = run("home-a")
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"reel:      s3://{bucket}/reels/trip.mp4" in first.stdout and "3 computed" in first.stdout
    listing = fs.find(f"{bucket}/reels")
    for name in ("trip.mp4", "trip.plan.json", "trip.srt"):
        assert f"{bucket}/reels/{name}" in listing
    results = [p for p in listing if "/_prefect-results/" in p]
    assert len(results) >= 3  # the three analyses' results and cache records
    assert not (tmp_path / "trip.mp4").exists()
    assert not (tmp_path / "ws").exists() or list((tmp_path / "ws").iterdir()) == []
    plan = fs.cat_file(f"{bucket}/reels/trip.plan.json").decode()
    assert len({line for line in plan.splitlines() if '"source":' in line}) >= 2

    second = run("home-b")  # another machine, as far as Prefect can tell: only the bucket is shared
    assert second.returncode == 0, second.stderr[-3000:]
    assert "analysis:  3 cached, 0 computed" in second.stdout
    assert S3_SECRET not in first.stdout + first.stderr + second.stdout + second.stderr


S3_SECRET = "test-secret-key-value"
