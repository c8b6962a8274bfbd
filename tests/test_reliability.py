"""Reliability: every valid input renders, every fault ends cleanly and leaves nothing half-done."""

from __future__ import annotations

from pathlib import Path

import os

import pytest

from autoclip.config import ClipOptions
from autoclip.media.probe import probe
from autoclip.media.render import build_graph, render, render_copy
from autoclip.media.ffmpeg import graph_args
from autoclip.models import Clip


def _clip(path: Path, start: float, end: float, index: int = 0) -> Clip:
    return Clip(video_index=index, source=str(path), name=path.name, path=str(path), start=start, end=end)


@pytest.fixture(scope="module")
def long_silent(tmp_path_factory) -> Path:
    """30 s of picture without any sound track."""
    from tests.synth import lavfi

    return lavfi(tmp_path_factory.mktemp("silent") / "silent30.mp4", "testsrc2=s=160x120:r=25", 30)


def test_equal_length_clips_of_a_silent_source_render(long_silent, tmp_path):
    clips = [_clip(long_silent, 1.0, 6.0), _clip(long_silent, 20.0, 25.0)]
    infos = {str(long_silent): probe(long_silent)}
    info = render(clips, infos, ClipOptions(width=320, height=240, fps=25), tmp_path / "reel.mp4")
    assert info.duration == pytest.approx(10.0, abs=0.1)
    assert (info.audio_codec, info.sample_rate, info.channels) == ("aac", 48000, 2)


def test_no_two_uses_of_an_input_merge(long_silent, media, tmp_path):
    """The same cut twice and equal silences: every use is its own input (none merged, none shared)."""
    clips = [_clip(long_silent, 1.0, 3.0), _clip(media.two_shots, 0.0, 2.0, 1), _clip(long_silent, 1.0, 3.0),
             _clip(media.two_shots, 0.0, 2.0, 1)]
    infos = {str(long_silent): probe(long_silent), str(media.two_shots): probe(media.two_shots)}
    args = graph_args(build_graph(clips, infos, ClipOptions(width=320, height=240), str(tmp_path / "x.mp4")))
    assert args.count("-i") == 8  # four cuts and four silences (a silence under each clip's sound)
    info = render(clips, infos, ClipOptions(width=320, height=240, fps=25), tmp_path / "twice.mp4")
    assert info.duration == pytest.approx(8.0, abs=0.15)


def test_copied_pictures_get_one_silence_per_clip(tmp_path):
    """The stream-copy path builds its sound the same way: two equal silences do not merge."""
    from autoclip.media import render as rd
    from tests.test_render_copy import SMALL, _source

    silent = _source(tmp_path / "silent.mp4", "testsrc2", audio=False)
    clips = [_clip(silent, 0, 2), _clip(silent, 3, 5)]
    infos = {str(silent): probe(silent)}
    segments = rd.copy_segments(clips, infos, ClipOptions(**SMALL))
    assert segments is not None
    out = tmp_path / "copied.mp4"
    render_copy(clips, segments, infos, ClipOptions(**SMALL), out)  # directly: no fallback to hide a failure
    info = probe(out)
    assert info.duration == pytest.approx(4.0, abs=0.05) and info.audio_codec == "aac"


def test_s3_upload_failure_keeps_the_result_where_it_says(s3_env, tmp_path, monkeypatch):
    """With the s3 backend there is no local copy: a failed upload moves the finished set out of the
    workspace (about to be removed) to the folder the error names, and leaves no object behind."""
    from autoclip.config import get_settings
    from autoclip.errors import StorageError
    from autoclip.storage.outputs import destination, publish_set

    monkeypatch.setenv("AUTOCLIP_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("AUTOCLIP_OUTPUT_URI", "s3://no-such-bucket-here/reels")
    monkeypatch.setenv("AUTOCLIP_RETRY_BASE_DELAY", "0.01")
    get_settings.cache_clear()
    work = tmp_path / "workspace"
    work.mkdir()
    (work / "reel.mp4").write_bytes(b"reel")
    (work / "reel.plan.json").write_text("{}")
    keep = tmp_path / "unsent"
    with pytest.raises(StorageError, match=f"kept in {keep}"):
        publish_set([(work / "reel.mp4", ""), (work / "reel.plan.json", ".plan.json")],
                    destination("reel.mp4", get_settings()), get_settings(), keep)
    assert sorted(p.name for p in keep.iterdir()) == ["reel.mp4", "reel.plan.json"]


def test_connection_errors_to_object_storage_are_retried(tmp_path):
    """A refused connection (botocore's EndpointConnectionError, not Python's ConnectionError) is a
    TransientError, so the one retry policy retries it."""
    import socket

    from autoclip.errors import TransientError
    from autoclip.storage.objects import ObjectStoreConfig, upload

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    config = ObjectStoreConfig(provider="s3", endpoint_url=f"http://127.0.0.1:{port}", region="eu-west-1",
                               access_key_id="AKIATEST", secret_access_key="secret", addressing_style="path")
    made = tmp_path / "r.mp4"
    made.write_bytes(b"x")
    with pytest.raises(TransientError):
        upload(made, "s3://bucket/r.mp4", config)


def test_a_new_set_removes_the_stale_sibling_and_a_failed_set_leaves_nothing(tmp_path, monkeypatch):
    from autoclip.config import get_settings
    from autoclip.errors import EnvironmentFault
    from autoclip.storage import outputs
    from autoclip.storage.outputs import destination, publish_set

    out = tmp_path / "out"
    out.mkdir()
    (out / "reel.srt").write_text("old")
    work = tmp_path / "w"
    work.mkdir()
    (work / "reel.mp4").write_bytes(b"new reel")
    (work / "reel.plan.json").write_text("{}")
    target = destination(str(out / "reel.mp4"), get_settings())
    publish_set([(work / "reel.mp4", ""), (work / "reel.plan.json", ".plan.json")], target, get_settings(), tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["reel.mp4", "reel.plan.json"]

    # the second rename fails: the reel this run placed goes too, and no temporary file stays
    (work / "reel.mp4").write_bytes(b"newer reel")
    (work / "reel.plan.json").write_text("{}")
    for p in out.iterdir():
        p.unlink()
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 4:  # two stagings, the reel's rename, then the plan's rename fails
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", failing_replace)
    with pytest.raises(EnvironmentFault, match="No space left"):
        publish_set([(work / "reel.mp4", ""), (work / "reel.plan.json", ".plan.json")], target, get_settings(), tmp_path)
    assert len(calls) == 4 and list(out.iterdir()) == []


def test_file_urls_and_upper_case_schemes_are_understood(media, tmp_path):
    from autoclip.config import get_settings
    from autoclip.sources import expand_sources, ingest, is_remote, normalise

    assert normalise(f"file://{media.two_shots}") == str(media.two_shots)
    assert normalise("HTTP://example.org/a.mp4") == "http://example.org/a.mp4" and is_remote("HTTPS://x/a.mp4")
    assert normalise("S3://bucket/a.mp4") == "s3://bucket/a.mp4"
    paths, rejected = expand_sources([f"file://{media.two_shots}"], get_settings())
    assert paths == [str(media.two_shots)] and rejected == []
    video = ingest(f"file://{media.two_shots}", 0, tmp_path, get_settings())
    assert video.info.duration > 5


def test_one_file_reached_many_ways_is_one_source(media, tmp_path):
    from autoclip.config import get_settings
    from autoclip.sources import expand_sources

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.mp4").symlink_to(media.two_shots)
    (folder / "loop").symlink_to(folder)
    paths, _ = expand_sources([str(folder / "**" / "*.mp4"), str(media.two_shots)], get_settings())
    assert len(paths) == 1


def test_analysis_key_holds_the_resolved_speech_model(tmp_path, monkeypatch):
    """The key names the model the setting resolves to and what its files are, not the setting: a model
    that changes under the same setting (installing the speech extra under `auto`) misses the cache."""
    from autoclip.analysis import analysis_cache_key
    from autoclip.config import get_settings
    from autoclip.providers import Secrets

    model = tmp_path / "model"
    model.mkdir()
    (model / "model.bin").write_bytes(b"tiny")
    monkeypatch.setenv("AUTOCLIP_WHISPER_MODEL", str(model))
    get_settings.cache_clear()
    settings = get_settings()
    before = analysis_cache_key("0" * 64, settings, Secrets.from_settings(settings))
    (model / "model.bin").write_bytes(b"another model")
    after = analysis_cache_key("0" * 64, settings, Secrets.from_settings(settings))
    assert before != after
