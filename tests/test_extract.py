"""One decode gives shots, frames, loudness and silences that match what the media holds."""

import wave

import pytest

from autoclip.analysis import analyze
from autoclip.config import get_settings
from autoclip.media import extract as ex
from autoclip.media.probe import probe
from autoclip.models import Interval
from autoclip.sources import ingest


def test_one_decode_finds_the_cut_the_silences_and_samples_frames(media, tmp_path):
    info = probe(media.two_shots)
    result = ex.extract(media.two_shots, info, tmp_path / "work", frame_interval=1.0, scene_threshold=0.3)
    assert result.duration == pytest.approx(6.0, abs=0.1)
    assert len(result.shot_cuts) == 1 and result.shot_cuts[0] == pytest.approx(3.0, abs=0.05)
    assert [t for t, _ in result.frames] == [0, 1, 2, 3, 4, 5]
    assert all(p.stat().st_size > 500 and p.suffix == ".jpg" for _, p in result.frames)
    with wave.open(str(result.wav)) as handle:
        assert (handle.getframerate(), handle.getnchannels()) == (16000, 1)
    levels = ex.loudness(result.wav)
    quiet = ex.silences(levels, ex.LOUDNESS_STEP, -40.0)
    assert [(round(s.start), round(s.end)) for s in quiet] == [(2, 3), (5, 6)]
    assert [(round(v.start), round(v.end)) for v in ex.voiced(quiet, 6.0)] == [(0, 2), (3, 5)]


def test_video_without_audio_gives_no_wav(media, tmp_path):
    result = ex.extract(media.no_audio, probe(media.no_audio), tmp_path / "w", frame_interval=2.0,
                        scene_threshold=0.3)
    assert result.wav is None and len(result.frames) == 3


def test_shot_cut_minimum_spacing():
    times = [0.0, 0.2, 0.6, 0.64, 1.5]
    # a cut must leave at least MIN_SHOT since the start or the last cut
    assert ex.shot_cuts(times, [0.0, 0.9, 0.9, 0.9, 0.9], 0.3) == [0.6, 1.5]


def test_voiced_is_the_complement_of_silence():
    assert ex.voiced([Interval(start=0, end=1), Interval(start=4, end=4.1)], 5.0) == [
        Interval(start=1.0, end=4.0), Interval(start=4.1, end=5.0)]


def test_analysis_cleans_its_scratch_files(media, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCLIP_WHISPER_MODEL", "none")
    settings = get_settings()
    video = ingest(str(media.two_shots), 0, tmp_path, settings)
    work = tmp_path / "scratch"
    analysis = analyze(video, work, settings)
    assert not work.exists()
    assert analysis.transcript is None and analysis.analysers["speech"].startswith("energy")
    assert len(analysis.speech) == 2 and analysis.shot_cuts == [pytest.approx(3.0, abs=0.05)]


def test_whisper_windows_cover_the_audio_and_cut_in_quiet_places(tmp_path, monkeypatch):
    import numpy as np

    from autoclip.providers import whisper as local

    monkeypatch.setattr(local, "WINDOW_SECONDS", 4.0)
    monkeypatch.setattr(local, "_CUT_SEARCH_SECONDS", 2.0)
    rate = 16000
    t = np.arange(int(rate * 11)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 300 * t) * 32767).astype(np.int16)
    tone[int(rate * 3.0):int(rate * 3.3)] = 0  # a pause inside the first search span (2-4 s)
    wav = tmp_path / "a.wav"
    with wave.open(str(wav), "w") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone.tobytes())
    pieces = list(local.audio_windows(wav))
    assert 3.0 <= pieces[1][0] <= 3.3  # the first cut falls in the pause
    assert sum(len(p) for _, p in pieces) == len(tone)  # nothing lost, nothing repeated
    assert all(offset == pytest.approx(sum(len(p) for _, p in pieces[:i]) / rate) for i, (offset, _) in enumerate(pieces))


def _ffmpeg(*args: str) -> None:
    from autoclip.media.ffmpeg import run_ffmpeg

    run_ffmpeg(list(args), what="making a test video")


@pytest.mark.parametrize("name, make", [
    ("short.mp4", ["-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=0.3", "-f", "lavfi", "-i", "sine=d=0.3",
                   "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"]),
    ("one_frame.mp4", ["-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=1", "-frames:v", "1",
                       "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
])
def test_a_video_shorter_than_the_frame_interval_is_analysed(tmp_path, monkeypatch, name, make):
    """0.3 s and one frame: the frame sampler still takes the first picture (ffmpeg's mjpeg encoder failed
    on an image sequence that got none)."""
    monkeypatch.setenv("AUTOCLIP_WHISPER_MODEL", "none")
    settings = get_settings()
    _ffmpeg(*make, str(tmp_path / name))
    video = ingest(str(tmp_path / name), 0, tmp_path / "ws", settings)
    assert video.info.duration < settings.frame_interval
    analysis = analyze(video, tmp_path / "scratch", settings)
    assert analysis.duration == pytest.approx(video.info.duration, abs=0.05)
    result = ex.extract(video.path, video.info, tmp_path / "w", frame_interval=settings.frame_interval,
                        scene_threshold=0.3)
    assert [t for t, _ in result.frames] == [0] and result.frames[0][1].stat().st_size > 500


def test_frames_come_from_the_video_not_a_cover_picture_before_it(tmp_path):
    import av

    cover = tmp_path / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "color=red:s=64x64", "-frames:v", "1", str(cover))
    both = tmp_path / "cover_first.mkv"
    _ffmpeg("-i", str(cover), "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=4", "-map", "0", "-map", "1",
            "-c:v:0", "png", "-c:v:1", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            str(both))
    result = ex.extract(both, probe(both), tmp_path / "w", frame_interval=1.0, scene_threshold=0.3)
    assert len(result.frames) == 4
    with av.open(str(result.frames[2][1])) as picture:
        frame = next(picture.decode(video=0))
    assert (frame.width, frame.height) == (320, 240)  # the 4:3 video, not the square cover
