"""Reliability: every valid input renders, every fault ends cleanly and leaves nothing half-done."""

from __future__ import annotations

from pathlib import Path

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
