"""Generative render tests (Hypothesis): random plans over a zoo of awkward little sources, each output
verified against the plan and against its sources.

Bounded and derandomised by default (25 examples); HYPOTHESIS_EXAMPLES=500 sets the larger budget (not an
AUTOCLIP_ variable: the test session clears those). See docs/architecture.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoclip.config import ClipOptions
from autoclip.media.ffmpeg import run_ffmpeg
from autoclip.media.probe import probe
from autoclip.media.render import fit_size, render
from autoclip.models import Clip, MediaInfo

EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "25"))
GRID = 6
# a picture whose every frame differs (a wave moving one 37th of the width per frame, brighter each frame)
# and whose top and bottom differ (a vertical ramp), so a small luma grid tells frames, orientation and
# crops apart
WAVE = "geq=lum='100+60*sin(2*PI*(X/W+N/37))+40*(Y/H-0.5)+N':cb=128:cr=128"
WAVE_LATER = "geq=lum='100+60*sin(2*PI*(X/W+N/37))-40*(Y/H-0.5)+N':cb=128:cr=128"  # 2nd part of the VFR source
ENC = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "12"]


def _make(out: Path, size: str, seconds: float, rate: int = 25, audio: str | None = None,
          vf: str = "", extra: list[str] | None = None, pix_fmt: str = "yuv420p") -> Path:
    args = ["-f", "lavfi", "-i", f"nullsrc=s={size}:r={rate}:d={seconds},{WAVE}" + (f",{vf}" if vf else "")]
    if audio:
        args += ["-f", "lavfi", "-i", audio]
    args += ENC + ["-pix_fmt", pix_fmt] + (["-c:a", "aac", "-b:a", "48k"] if audio else ["-an"])
    args += (extra or []) + ["-t", str(seconds), str(out)]
    run_ffmpeg(args, what=f"making {out.name}")
    return out


def _rotate(src: Path, out: Path, degrees: int) -> Path:
    run_ffmpeg(["-display_rotation:v:0", str(degrees), "-i", str(src), "-c", "copy", str(out)],
               what=f"making {out.name}")
    return out


@dataclass
class Source:
    path: Path
    info: MediaInfo = field(repr=False)
    frames: list[tuple[float, np.ndarray]] = field(repr=False)  # (time, upright luma grid) of every frame


def _grid(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    ys = np.linspace(0, h, GRID + 1).astype(int)
    xs = np.linspace(0, w, GRID + 1).astype(int)
    return np.array([[gray[ys[i]:max(ys[i + 1], ys[i] + 1), xs[j]:max(xs[j + 1], xs[j] + 1)].mean()
                      for j in range(GRID)] for i in range(GRID)])


def _source_frames(path: Path, rotation: int) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        return [(float(f.time), np.rot90(_grid(f.to_ndarray(format="gray").astype(float)), k=rotation // 90))
                for f in container.decode(video=0)]


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> dict[str, Source]:
    """Small awkward sources, made once per session."""
    d = tmp_path_factory.mktemp("zoo")
    tone = "sine=f=440:d={s}:sample_rate={r}"
    made = {
        "no_audio": _make(d / "no_audio.mp4", "96x64", 2),
        "mono": _make(d / "mono.mp4", "96x64", 2, audio=tone.format(s=2, r=48000)),
        "surround": _make(d / "surround.mp4", "96x64", 2, audio="aevalsrc='0.1*sin(2*PI*440*t)|0.1*sin(2*PI*550*t)|"
                          "0|0.05*sin(2*PI*60*t)|0.1*sin(2*PI*660*t)|0.1*sin(2*PI*770*t)':c=5.1:s=48000:d=2"),
        "8khz": _make(d / "8khz.mp4", "96x64", 2, audio=tone.format(s=2, r=8000)),
        "44khz": _make(d / "44khz.mp4", "96x64", 2, audio="sine=f=440:d=2:sample_rate=44100,aformat=channel_layouts=stereo"),
        "anamorphic": _make(d / "anamorphic.mp4", "64x64", 2, vf="setsar=2/1", audio=tone.format(s=2, r=48000)),
        "odd_444": _make(d / "odd_444.mp4", "97x61", 2, pix_fmt="yuv444p"),
        "interlaced": _make(d / "interlaced.mp4", "96x64", 2, audio=tone.format(s=2, r=48000),
                            extra=["-flags", "+ildct+ilme", "-field_order", "tt"]),
        "one_frame": _make(d / "one_frame.mp4", "96x64", 0.04, extra=["-frames:v", "1"]),
        "short": _make(d / "short.mp4", "96x64", 0.3, audio=tone.format(s=0.3, r=48000)),
    }
    made["rot90"] = _rotate(made["mono"], d / "rot90.mp4", 90)
    made["rot270"] = _rotate(made["no_audio"], d / "rot270.mp4", 270)
    vfr = d / "vfr.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", f"nullsrc=s=96x64:r=10:d=1,{WAVE}", "-f", "lavfi", "-i",
                f"nullsrc=s=96x64:r=30:d=1,{WAVE_LATER}", "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0[v]",
                "-map", "[v]", *ENC, "-pix_fmt", "yuv420p", "-fps_mode", "vfr", "-video_track_timescale", "90000",
                str(vfr)], what="making vfr.mp4")
    made["vfr"] = vfr
    zoo = {}
    for name, path in made.items():
        info = probe(path)
        zoo[name] = Source(path=path, info=info, frames=_source_frames(path, info.rotation))
    assert zoo["rot90"].info.rotation == 90 and zoo["rot270"].info.rotation == 270
    assert zoo["vfr"].info.variable_frame_rate and zoo["anamorphic"].info.sample_aspect_ratio == 2
    return zoo


SIZES = [(192, 108), (120, 160), (128, 128)]


@st.composite
def plans(draw, names: list[str]):
    """1-20 clips over the zoo: equal and unequal lengths, touching clips, one source many times, clips
    at a source's very start and end, sub-second clips."""
    n = draw(st.integers(1, 20))
    equal = draw(st.one_of(st.none(), st.floats(0.1, 1.0)))
    favourite = draw(st.sampled_from(names))
    picks = []
    for _ in range(n):
        name = draw(st.one_of(st.sampled_from(names), st.just(favourite)))
        where = draw(st.sampled_from(["start", "end", "any", "touch"]))
        length = equal if equal is not None else draw(st.floats(0.1, 1.5))
        picks.append((name, where, round(length, 3)))
    size = draw(st.sampled_from(SIZES))
    fps = draw(st.sampled_from([25, 30]))
    return picks, size, fps, draw(st.floats(0, 1))


def _cuts(picks, zoo: dict[str, Source], offset: float) -> list[Clip]:
    clips, last_end = [], {}
    for i, (name, where, length) in enumerate(picks):
        src = zoo[name]
        duration = src.info.duration
        length = min(length, duration)
        if where == "start":
            start = 0.0
        elif where == "end":
            start = duration - length
        elif where == "touch" and name in last_end and last_end[name] + length <= duration:
            start = last_end[name]
        else:
            start = (duration - length) * offset
        start = round(max(0.0, start), 3)
        end = round(min(duration, start + length), 3)
        if end - start < 0.03:
            start, end = 0.0, round(duration, 3)
        last_end[name] = end
        clips.append(Clip(video_index=i, source=name, name=name, path=str(src.path), start=start, end=end))
    return clips


def _verify(out: Path, clips: list[Clip], zoo_by_path: dict[str, Source], size, fps: int) -> None:
    W, H = size
    with av.open(str(out)) as container:
        v, a = container.streams.video[0], container.streams.audio[0]
        assert (v.codec_context.name, v.codec_context.format.name) == ("h264", "yuv420p")
        assert (v.codec_context.width, v.codec_context.height) == (W, H)
        assert (a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels) == ("aac", 48000, 2)
        frames = [(float(f.time), f.to_ndarray(format="gray").astype(float)) for f in container.decode(v)]
        container.seek(0)
        samples = sum(f.samples for f in container.decode(a))
    # each clip is a whole number of frames (its length rounded, at least one), the sound as long
    lengths = [max(1, round(round(c.duration, 3) * fps)) for c in clips]
    assert len(frames) == sum(lengths), (len(frames), lengths)
    video_seconds = len(frames) / fps
    assert abs(video_seconds - sum(c.duration for c in clips)) <= len(clips) / fps
    # AAC encodes whole 1024-sample frames: allow one of those beside the frame
    assert abs(samples / 48000 - video_seconds) <= 1 / fps + 1024 / 48000, (samples / 48000, video_seconds)
    first = 0
    for clip, length in zip(clips, lengths):
        src = zoo_by_path[clip.path]
        w, h = fit_size(src.info, W, H)
        x0, y0 = (W - w) // 2, (H - h) // 2
        got = _grid(frames[first][1][y0:y0 + h, x0:x0 + w])
        # the source frame shown at the clip's start, and the source frame the reel's frame looks most like
        expected = min(src.frames, key=lambda tf: (tf[0] < clip.start - 1e-3, abs(tf[0] - clip.start)))
        best = min(src.frames, key=lambda tf: np.abs(tf[1] - got).mean())
        step = 1 / max(1.0, src.info.fps)
        assert abs(best[0] - expected[0]) <= step + 1 / fps + 1e-3, (
            f"clip {clip.name} {clip.start}-{clip.end} at reel frame {first} looks like {best[0]:.3f} s of "
            f"the source, not {expected[0]:.3f} s")
        first += length


@settings(max_examples=EXAMPLES, derandomize=EXAMPLES <= 50, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_plans_render_and_verify(zoo, tmp_path_factory, data):
    picks, size, fps, offset = data.draw(plans(sorted(zoo)))
    clips = _cuts(picks, zoo, offset)
    out = tmp_path_factory.mktemp("gen") / "reel.mp4"
    try:
        render(clips, {str(s.path): s.info for s in zoo.values()}, ClipOptions(width=size[0], height=size[1], fps=fps,
               preset="ultrafast"), out)
        _verify(out, clips, {str(s.path): s for s in zoo.values()}, size, fps)
    finally:
        out.unlink(missing_ok=True)
