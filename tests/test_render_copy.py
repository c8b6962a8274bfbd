"""Stream-copy rendering: when every cut sits on a keyframe of sources that already match the output, the
pictures are copied GOP by GOP (bit-identical, frame-exact) and only the sound is encoded; anything else
is re-encoded as before."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import pytest

from autoclip.config import ClipOptions
from autoclip.errors import RenderError
from autoclip.media import render as rd
from autoclip.media.ffmpeg import run_ffmpeg
from autoclip.media.probe import probe
from autoclip.models import Clip

SMALL = dict(width=320, height=180, fps=25)
# one keyframe per second, no scene-cut keyframes, the same encoder settings for every source (same SPS/PPS)
FIXED_GOP = ["-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-pix_fmt", "yuv420p", "-g", "25",
             "-keyint_min", "25", "-sc_threshold", "0"]


def _source(out: Path, picture: str, seconds: int = 6, audio: bool = True, extra: list[str] | None = None) -> Path:
    args = ["-f", "lavfi", "-i", f"{picture}=s=320x180:r=25:d={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=f=440:d={seconds}:sample_rate=48000"]
    args += FIXED_GOP + (extra or []) + (["-c:a", "aac", "-b:a", "64k"] if audio else ["-an"])
    run_ffmpeg(args + ["-t", str(seconds), str(out)], what=f"making {out.name}")
    return out


@pytest.fixture(scope="module")
def gop_media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gop")
    return {
        "a": _source(folder / "a.mp4", "testsrc2"),
        "b": _source(folder / "b.mp4", "testsrc"),
        "silent": _source(folder / "silent.mp4", "testsrc2", audio=False),
        "big": _source(folder / "big.mp4", "testsrc2", extra=["-vf", "scale=640:360"]),
    }


def _clip(path: Path, start: float, end: float, index: int = 0) -> Clip:
    return Clip(video_index=index, source=str(path), name=path.name, path=str(path), start=start, end=end)


def _infos(*paths: Path):
    return {str(p): probe(p) for p in paths}


def _frame_hashes(path: Path) -> list[tuple[float, str]]:
    with av.open(str(path)) as container:
        return [(frame.time, hashlib.md5(frame.to_ndarray(format="yuv420p").tobytes()).hexdigest())
                for frame in container.decode(video=0)]


def test_keyframe_cuts_are_copied_bit_for_bit(gop_media, tmp_path, monkeypatch):
    a, b = gop_media["a"], gop_media["b"]
    plan = [(a, 1, 3), (b, 2, 4), (a, 4, 6), (b, 0, 1)]
    clips = [_clip(p, s, e, i) for i, (p, s, e) in enumerate(plan)]
    encoded = []
    monkeypatch.setattr(rd, "build_graph", lambda *args: encoded.append(args) or pytest.fail("re-encoded"))
    out = tmp_path / "copy.mp4"
    info = rd.render(clips, _infos(a, b), ClipOptions(**SMALL), out, allow_copy=True)

    assert info.duration == pytest.approx(7.0, abs=0.05)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 320, 180)
    assert info.sample_rate == 48000 and info.channels == 2
    expected = []
    sources = {p: _frame_hashes(p) for p in (a, b)}
    for path, start, end in plan:
        expected += [h for t, h in sources[path] if start - 1e-6 <= t < end - 1e-6]
    got = _frame_hashes(out)
    assert len(got) == len(expected) == 7 * 25
    assert [h for _, h in got] == expected  # the same pictures, in order, none lost or repeated
    assert [round(t * 25) for t, _ in got] == list(range(len(got)))  # a constant 25 fps timeline
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        assert float(audio.duration * audio.time_base) == pytest.approx(7.0, abs=0.03)
    assert [p.name for p in tmp_path.iterdir()] == ["copy.mp4"]


def test_a_source_without_sound_gets_silence_when_copied(gop_media, tmp_path):
    silent, a = gop_media["silent"], gop_media["a"]
    clips = [_clip(silent, 0, 2, 0), _clip(a, 3, 5, 1)]
    segments = rd.copy_segments(clips, _infos(silent, a), ClipOptions(**SMALL))
    assert [(s.start, s.end, s.frames) for s in segments] == [(0, 2, 50), (3, 5, 50)]
    info = rd.render(clips, _infos(silent, a), ClipOptions(**SMALL), tmp_path / "r.mp4", allow_copy=True)
    assert info.duration == pytest.approx(4.0, abs=0.05) and info.audio_codec == "aac"


def test_the_last_cut_may_run_to_the_end_of_the_source(gop_media):
    a = gop_media["a"]
    segments = rd.copy_segments([_clip(a, 5, 6)], _infos(a), ClipOptions(**SMALL))
    assert segments and segments[0].frames == 25


@pytest.mark.parametrize("why, clip, options", [
    ("cut between keyframes", (1.5, 3.0), SMALL),
    ("end between keyframes", (1.0, 2.4), SMALL),
    ("other output size", (1.0, 3.0), dict(width=640, height=360, fps=25)),
    ("other frame rate", (1.0, 3.0), dict(width=320, height=180, fps=30)),
])
def test_ineligible_plans_are_not_copied(gop_media, why, clip, options):
    a = gop_media["a"]
    assert rd.copy_segments([_clip(a, *clip)], _infos(a), ClipOptions(**options)) is None, why


def test_sources_with_other_parameters_are_not_copied(gop_media, media):
    a, big = gop_media["a"], gop_media["big"]
    options = ClipOptions(**SMALL)
    assert rd.copy_segments([_clip(a, 0, 1), _clip(big, 0, 1)], _infos(a, big), options) is None
    # same size and rate but another encoder set-up (a different SPS/PPS): one stream cannot hold both
    other = media.two_shots  # 320x180 25 fps, but other x264 settings
    assert rd.copy_segments([_clip(a, 0, 1), _clip(other, 0, 1)], _infos(a, other), options) is None


def test_default_render_never_copies(gop_media, tmp_path, monkeypatch):
    a = gop_media["a"]
    monkeypatch.setattr(rd, "copy_segments", lambda *args: pytest.fail("copy path taken by default"))
    info = rd.render([_clip(a, 1, 3)], _infos(a), ClipOptions(**SMALL), tmp_path / "r.mp4")
    assert info.duration == pytest.approx(2.0, abs=0.1)


def test_a_failed_copy_falls_back_to_re_encoding(gop_media, tmp_path, monkeypatch):
    a = gop_media["a"]

    def broken(segments, output):
        output.write_bytes(b"half a file")
        raise RenderError("stream copy: simulated failure")

    monkeypatch.setattr(rd, "copy_video", broken)
    out = tmp_path / "r.mp4"
    info = rd.render([_clip(a, 1, 3), _clip(a, 4, 5)], _infos(a), ClipOptions(**SMALL), out, allow_copy=True)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert [p.name for p in tmp_path.iterdir()] == ["r.mp4"]


def test_an_open_gop_source_is_refused_by_the_copy(tmp_path):
    """Open GOPs start with pictures that need the GOP before: copying them alone would show garbage."""
    src = _source(tmp_path / "open.mp4", "testsrc2", extra=["-x264-params", "open-gop=1:bframes=3",
                                                              "-preset", "veryfast"])
    clips = [_clip(src, 2, 4)]
    segments = rd.copy_segments(clips, _infos(src), ClipOptions(**SMALL))
    if segments is None:
        pytest.skip("this encoder marked no open-GOP picture as a keyframe")
    try:
        count = rd.copy_video(segments, tmp_path / "v.mp4")
    except RenderError as exc:
        assert "open GOP" in str(exc) or "pictures" in str(exc)
    else:  # copied: then the pictures must be exactly the source's
        assert count == 50
        source = [h for t, h in _frame_hashes(src) if 2 - 1e-6 <= t < 4 - 1e-6]
        assert [h for _, h in _frame_hashes(tmp_path / "v.mp4")] == source


def test_copied_pictures_keep_a_late_sound_in_place(tmp_path, monkeypatch):
    """Sound that starts 2 s after the picture: with the pictures copied, the tone still starts where it
    does in the source (it was moved to the clip's start before)."""
    src = tmp_path / "late_sound.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=6", "-itsoffset", "2", "-f", "lavfi", "-i",
                "sine=f=440:d=4:sample_rate=48000", "-map", "0:v", "-map", "1:a", *FIXED_GOP, "-c:a", "aac",
                "-b:a", "64k", str(src)], what="making late_sound.mp4")
    monkeypatch.setattr(rd, "build_graph", lambda *args: pytest.fail("re-encoded"))
    out = tmp_path / "r.mp4"
    rd.render([_clip(src, 1, 4), _clip(src, 0, 1, 1)], _infos(src), ClipOptions(**SMALL), out, allow_copy=True)
    loud = []
    with av.open(str(out)) as container:
        for frame in container.decode(audio=0):
            level = abs(frame.to_ndarray()).max()
            loud.append((frame.time, level > 0.05))
    onset = next(t for t, on in loud if on)
    assert onset == pytest.approx(1.0, abs=1 / 25 + 1024 / 48000)  # source 2 s is 1 s into the first clip
    assert not any(on for t, on in loud if t >= 3.0 + 1024 / 48000)  # the second clip (source 0-1 s) is silent
