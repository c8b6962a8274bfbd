"""Render cache: the same plan over the same sources with the same options is a verified copy of the reel
kept before, not another encode; anything that changes the reel misses."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from autoclip.config import ClipOptions
from autoclip.media import render as rd
from autoclip.media.probe import probe
from autoclip.models import Clip

SMALL = dict(width=320, height=180, fps=25)


def _clip(path: Path, start: float, end: float) -> Clip:
    return Clip(video_index=0, source=str(path), name=path.name, path=str(path), start=start, end=end)


@pytest.fixture
def source(media, tmp_path) -> Path:
    copy = tmp_path / "src" / "two_shots.mp4"
    copy.parent.mkdir()
    shutil.copyfile(media.two_shots, copy)
    return copy


@pytest.fixture
def encodes(monkeypatch):
    """Counts the encodes that really run."""
    calls = []
    real = rd.run_ffmpeg
    monkeypatch.setattr(rd, "run_ffmpeg", lambda *a, **k: calls.append(k.get("what")) or real(*a, **k))
    return calls


def test_the_same_plan_again_is_a_copy_of_the_kept_reel(source, tmp_path, encodes):
    cache = tmp_path / "cache"
    clips = [_clip(source, 0.5, 2.0), _clip(source, 3.0, 4.5)]
    infos = {str(source): probe(source)}
    first = rd.render(clips, infos, ClipOptions(**SMALL), tmp_path / "a" / "reel.mp4", cache_dir=cache)
    again = rd.render(clips, infos, ClipOptions(**SMALL), tmp_path / "b" / "reel.mp4", cache_dir=cache)
    assert len(encodes) == 1
    assert (tmp_path / "a" / "reel.mp4").read_bytes() == (tmp_path / "b" / "reel.mp4").read_bytes()
    assert again.duration == pytest.approx(first.duration) == pytest.approx(3.0, abs=0.1)
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["reel.mp4"]
    assert len(list(cache.glob("*.mp4"))) == 1


def test_anything_that_changes_the_reel_misses(source, tmp_path, encodes):
    cache = tmp_path / "cache"
    infos = {str(source): probe(source)}
    clips = [_clip(source, 0.5, 2.0)]
    rd.render(clips, infos, ClipOptions(**SMALL), tmp_path / "r1.mp4", cache_dir=cache)
    rd.render(clips, infos, ClipOptions(crf=30, **SMALL), tmp_path / "r2.mp4", cache_dir=cache)
    rd.render([_clip(source, 0.5, 2.1)], infos, ClipOptions(**SMALL), tmp_path / "r3.mp4", cache_dir=cache)
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file was written again
    rd.render(clips, infos, ClipOptions(**SMALL), tmp_path / "r4.mp4", cache_dir=cache)
    assert len(encodes) == 4
    rd.render(clips, infos, ClipOptions(**SMALL), tmp_path / "r5.mp4")  # no cache asked: always encodes
    assert len(encodes) == 5


def test_content_ids_find_the_reel_from_another_copy_of_the_sources(source, tmp_path, encodes):
    cache = tmp_path / "cache"
    other = tmp_path / "elsewhere.mp4"
    shutil.copyfile(source, other)
    ids = {str(source): "sha-of-two-shots", str(other): "sha-of-two-shots"}
    rd.render([_clip(source, 1, 2)], {str(source): probe(source)}, ClipOptions(**SMALL), tmp_path / "a.mp4",
              cache_dir=cache, source_ids=ids)
    rd.render([_clip(other, 1, 2)], {str(other): probe(other)}, ClipOptions(**SMALL), tmp_path / "b.mp4",
              cache_dir=cache, source_ids=ids)
    assert len(encodes) == 1


def test_a_damaged_entry_is_rendered_again(source, tmp_path, encodes):
    cache = tmp_path / "cache"
    infos = {str(source): probe(source)}
    clips = [_clip(source, 0.5, 2.0)]
    rd.render(clips, infos, ClipOptions(**SMALL), tmp_path / "a.mp4", cache_dir=cache)
    (kept,) = cache.glob("*.mp4")
    kept.write_bytes(b"not a video any more")
    info = rd.render(clips, infos, ClipOptions(**SMALL), tmp_path / "b.mp4", cache_dir=cache)
    assert len(encodes) == 2 and info.duration == pytest.approx(1.5, abs=0.1)
    assert kept.stat().st_size > 1000  # replaced by the new render


def test_only_the_newest_reels_are_kept(source, tmp_path, monkeypatch):
    monkeypatch.setattr(rd, "CACHE_ENTRIES", 2)
    cache = tmp_path / "cache"
    infos = {str(source): probe(source)}
    for n, end in enumerate((1.0, 1.2, 1.4)):
        rd.render([_clip(source, 0, end)], infos, ClipOptions(**SMALL), tmp_path / f"r{n}.mp4", cache_dir=cache)
        os.utime(next(iter(sorted(cache.glob("*.mp4"), key=os.path.getmtime))), None)
    assert len(list(cache.glob("*.mp4"))) == 2
    assert not list(cache.glob(".*partial"))
