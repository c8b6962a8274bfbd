"""Rendering: mixed sources come out as one upright, square-pixel H.264/AAC MP4 of the planned length."""

from pathlib import Path

import numpy as np
import pytest

from autoclip.config import ClipOptions
from autoclip.errors import RenderError
from autoclip.media.ffmpeg import run_ffmpeg
from autoclip.media.probe import probe
from autoclip.media.render import render
from autoclip.media.subtitles import reel_cues, to_srt
from autoclip.models import Clip, Sentence, Transcript, Word
from tests.synth import frame_at


def _clip(path: Path, start: float, end: float, index: int = 0) -> Clip:
    return Clip(video_index=index, source=str(path), name=path.name, path=str(path), start=start, end=end)


def _infos(*paths):
    return {str(p): probe(p) for p in paths}


def test_mixed_sources_render_to_one_verified_mp4(media, tmp_path):
    clips = [_clip(media.rotated, 0.5, 2.5, 0), _clip(media.anamorphic, 1.0, 3.0, 1),
             _clip(media.no_audio, 0.0, 1.5, 2), _clip(media.two_shots, 2.5, 3.5, 3)]
    out = tmp_path / "reel.mp4"
    seen = []
    info = render(clips, _infos(media.rotated, media.anamorphic, media.no_audio, media.two_shots),
                  ClipOptions(width=640, height=360, fps=25), out, on_progress=seen.append)
    assert info.duration == pytest.approx(6.5, abs=0.1)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.sample_aspect_ratio, info.rotation) == (640, 360, 1.0, 0)
    assert info.sample_rate == 48000 and info.channels == 2
    assert seen and max(seen) <= 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["reel.mp4"]  # no temp file left beside it

    # the rotated red|blue source stands upright: a portrait box in the middle, red and blue stacked
    upright = frame_at(out, 1.0).astype(int)
    assert upright[180, 20].sum() < 60  # pillarbox left of the picture is black
    top, bottom = upright[90, 320], upright[270, 320]
    assert {_colour(top), _colour(bottom)} == {"red", "blue"}
    # the 352x288 SAR 16:11 source is 16:9 once its pixels are square: it fills the frame edge to edge
    wide = frame_at(out, 3.0).astype(int)
    assert wide[180, 4].sum() > 60 and wide[180, 635].sum() > 60


def _colour(pixel) -> str:
    r, g, b = pixel
    return "red" if r > 150 and b < 100 else "blue" if b > 150 and r < 100 else f"other{tuple(pixel)}"


def test_variable_frame_rate_source_renders_at_a_constant_rate(media, tmp_path):
    out = tmp_path / "cfr.mp4"
    info = render([_clip(media.vfr, 1.0, 3.5)], _infos(media.vfr), ClipOptions(width=320, height=180, fps=25),
                  out)
    assert info.duration == pytest.approx(2.5, abs=0.08)
    assert info.variable_frame_rate is False and info.fps == pytest.approx(25)


def test_silent_source_gets_a_silent_audio_track(media, tmp_path):
    out = tmp_path / "silent.mp4"
    render([_clip(media.no_audio, 0, 2)], _infos(media.no_audio), ClipOptions(width=320, height=240), out)
    import av

    with av.open(str(out)) as container:
        samples = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
    assert len(samples) > 48000 * 1.9 and np.abs(samples).max() < 1e-4


def test_moviepy_engine_renders_the_same_plan(media, tmp_path):
    clips = [_clip(media.anamorphic, 0.5, 2.0, 0), _clip(media.no_audio, 1.0, 2.0, 1)]
    info = render(clips, _infos(media.anamorphic, media.no_audio),
                  ClipOptions(width=320, height=180, fps=25, engine="moviepy"), tmp_path / "mp.mp4")
    assert info.duration == pytest.approx(2.5, abs=0.15)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == ("h264", "aac", 320, 180)


def test_long_plan_renders_in_parts_joined_in_sync(media, tmp_path):
    """More clips than one graph holds: parts joined with the pictures copied and the sound encoded once,
    every clip a whole number of frames, the sound exactly as long, the parts' files gone."""
    from autoclip.media.render import CLIPS_PER_PART
    import av

    sources = [media.two_shots, media.no_audio, media.anamorphic]
    clips = [_clip(sources[k % 3], 0.2 * (k % 4), 0.2 * (k % 4) + 0.52 + 0.1 * (k % 3), k % 3)
             for k in range(CLIPS_PER_PART * 2 + 1)]
    out = tmp_path / "long.mp4"
    seen = []
    render(clips, _infos(*sources), ClipOptions(width=320, height=180, fps=25, preset="ultrafast"), out,
           on_progress=seen.append)
    frames = sum(max(1, round(round(c.duration, 3) * 25)) for c in clips)
    with av.open(str(out)) as container:
        video = [f.pts for f in container.decode(video=0)]
        container.seek(0)
        samples = sum(f.samples for f in container.decode(audio=0))
    assert len(video) == frames
    assert len({b - a for a, b in zip(video, video[1:])}) == 1  # a constant rate across the joins
    assert abs(samples / 48000 - frames / 25) <= 1024 / 48000
    assert seen == sorted(seen) and max(seen) <= 1.0 and max(seen) > 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["long.mp4"]


MARK = 3.0  # source time at which both sources below turn blue and start their tone
FRAME = 1 / 25


def _late_stream_source(out: Path, late: str) -> Path:
    """6 s of red turning blue at MARK with a tone starting at MARK, one stream starting 2 s into the file
    (`late` is "audio" or "video"; made as a user would, with -itsoffset)."""
    gap = 2.0
    red = MARK - (gap if late == "video" else 0)
    seconds = 6 - (gap if late == "video" else 0)
    video = ["-f", "lavfi", "-i", f"color=c=red:s=160x120:r=25:d={red}[r];color=c=blue:s=160x120:r=25:"
             f"d={seconds - red}[b];[r][b]concat=n=2:v=1:a=0[out0]"]
    onset = MARK - (gap if late == "audio" else 0)
    sound_seconds = 6 - (gap if late == "audio" else 0)
    audio = ["-f", "lavfi", "-i", f"aevalsrc='0.4*sin(2*PI*440*t)*gte(t\\,{onset})':s=48000:d={sound_seconds}"]
    offset = ["-itsoffset", str(gap)]
    args = (offset + video + audio) if late == "video" else (video + offset + audio)
    run_ffmpeg(args + ["-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25",
                       "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", str(out)], what=f"making {out.name}")
    return out


def _marks(path: Path, after: float) -> tuple[float, float]:
    """When the reel first turns blue and when its tone first sounds (seconds), from `after` on."""
    import av

    with av.open(str(path)) as container:
        blue = next(f.time for f in container.decode(video=0)
                    if f.time >= after and _colour(f.to_ndarray(format="rgb24")[60, 80]) == "blue")
        container.seek(0)
        for frame in container.decode(audio=0):
            loud = np.nonzero(np.abs(frame.to_ndarray()).max(axis=0) > 0.1)[0]
            if len(loud) and frame.time + loud[0] / frame.sample_rate >= after:
                return blue, frame.time + loud[0] / frame.sample_rate
    raise AssertionError(f"no tone in {path}")


@pytest.mark.parametrize("late", ["audio", "video"])
def test_a_stream_that_starts_late_keeps_its_place_in_the_reel(media, tmp_path, late):
    """Picture and sound of a clip are what plays at those times in the source, whichever stream starts
    later: from the start of the file (read, not seeked), from a seek, and in a reel rendered in parts."""
    from autoclip.media.render import CLIPS_PER_PART

    source = _late_stream_source(tmp_path / f"late_{late}.mp4", late)
    infos = _infos(source, media.no_audio)
    options = ClipOptions(width=160, height=120, fps=25, preset="ultrafast")
    filler = [_clip(media.no_audio, 0.0, 0.4, 1)] * CLIPS_PER_PART
    begins = 0.4 * CLIPS_PER_PART  # the filler is silent testsrc2, whose pictures hold blue too
    plans = {"start": ([_clip(source, 0.0, 4.0)], 0.0, MARK),
             "seek": ([_clip(source, 1.5, 4.5)], 0.0, MARK - 1.5),
             "parts": (filler + [_clip(source, 1.5, 4.5)], begins, begins + MARK - 1.5)}
    for name, (clips, after, expected) in plans.items():
        out = tmp_path / f"{name}.mp4"
        render(clips, infos, options, out)
        blue, tone = _marks(out, after)
        assert tone == pytest.approx(expected, abs=FRAME), name
        assert blue == pytest.approx(expected, abs=FRAME), name


def _sound_extent(source: Path, tmp_path: Path) -> tuple[float, float, float]:
    """(analysed duration, first and last loud moment) as the analysis sees `source`."""
    from autoclip.media import extract as ex

    extraction = ex.extract(source, probe(source), tmp_path / f"x_{source.stem}", frame_interval=1.0,
                            scene_threshold=0.3)
    levels, _ = ex.audio_levels(extraction.wav)
    loud = [k * ex.LOUDNESS_STEP for k, level in enumerate(levels) if level > -40]
    return extraction.duration, loud[0], loud[-1] + ex.LOUDNESS_STEP


def test_analysis_hears_the_sound_where_the_render_plays_it(tmp_path):
    """The analysis reads the sound on the picture's timeline, as the render plays it: a track that starts
    2 s late is loud from MARK on (it was read as starting at 0), and a 2 s track on 6 s of picture leaves a
    6 s video with 4 s of silence (it was analysed as a 2 s video)."""
    late = _late_stream_source(tmp_path / "late_audio.mp4", "audio")
    duration, first, last = _sound_extent(late, tmp_path)
    assert duration == pytest.approx(6.0, abs=FRAME)
    assert (first, last) == (pytest.approx(MARK, abs=0.25), pytest.approx(6.0, abs=0.25))

    short = tmp_path / "short_sound.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=6", "-f", "lavfi", "-i", "sine=d=2",
                "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(short)], what="making short_sound.mp4")
    duration, first, last = _sound_extent(short, tmp_path)
    assert duration == pytest.approx(6.0, abs=FRAME)
    assert (first, last) == (pytest.approx(0.0, abs=0.25), pytest.approx(2.0, abs=0.25))


def test_h264_flv_renders_from_its_start(tmp_path):
    """An H.264/AAC FLV with one keyframe: seeking it to 0 (its first keyframe is at 0.08 s) gave no
    pictures at all and the reel failed verification."""
    import av

    flv = tmp_path / "h264.flv"
    # libx264's default B-frames put the first picture at 0.08 s, after the sound's 0.057 s
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=4", "-f", "lavfi", "-i", "sine=d=4",
                "-c:v", "libx264", "-c:a", "aac", str(flv)], what="making h264.flv")
    out = tmp_path / "flv.mp4"
    info = render([_clip(flv, 0.0, 3.0)], _infos(flv), ClipOptions(width=160, height=120, fps=25,
                                                                    preset="ultrafast"), out)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 75


def test_failed_render_leaves_nothing_at_the_output(media, tmp_path):
    out = tmp_path / "reel.mp4"
    out.write_bytes(b"previous reel")
    infos = _infos(media.two_shots)
    broken = _clip(media.two_shots, 0, 2)
    broken.path = str(tmp_path / "gone.mp4")
    infos[broken.path] = infos[str(media.two_shots)]
    with pytest.raises(RenderError, match="gone.mp4"):
        render([broken], infos, ClipOptions(width=320, height=180), out)
    assert out.read_bytes() == b"previous reel"
    assert [p.name for p in tmp_path.iterdir()] == ["reel.mp4"]


def test_subtitles_follow_the_reel_timeline():
    words = [Word(start=10 + i, end=10.8 + i, text=f"word{i}") for i in range(4)]
    transcript = Transcript(engine="t", sentences=[Sentence(start=10, end=13.8, text="x", words=words)])
    clips = [Clip(video_index=1, source="a", name="a", path="a", start=0, end=5),
             Clip(video_index=0, source="b", name="b", path="b", start=11, end=13)]
    cues = reel_cues(clips, {0: transcript, 1: None})
    assert cues == [(5.0, 6.8, "word1 word2")]
    assert to_srt(cues) == "1\n00:00:05,000 --> 00:00:06,800\nword1 word2\n\n"
