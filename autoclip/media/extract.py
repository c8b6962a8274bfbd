"""ONE decode per video: 16 kHz mono WAV, sampled frames as small JPEGs, scene scores; loudness from the WAV.

Everything large goes to files in `workdir`; what comes back is a few lists of numbers.
"""

from __future__ import annotations

import math
import re
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autoclip.media.ffmpeg import run_ffmpeg
from autoclip.models import Interval, MediaInfo

SCENE_WIDTH = 160  # scene scores on a thumbnail: cuts show at any size, and it costs far less
# Up to this many pixels a picture is decoded on one thread: frame threading costs 15-25% more CPU for the
# same frames, and the filters, the JPEG encoder and the WAV already run on threads of their own (and the
# flow analyses several videos at once). Larger pictures (4K) keep ffmpeg's threaded decoder for speed.
SINGLE_THREAD_PIXELS = 1920 * 1088
FRAME_WIDTH = 320
LOUDNESS_STEP = 0.25
MIN_SHOT = 0.5
MIN_SILENCE = 0.4
MIN_SPEECH = 0.3
_FRAME_RE = re.compile(r"pts_time:([-\d.e+]+)")
_SCORE_RE = re.compile(r"lavfi\.scene_score=([-\d.e+]+)")


@dataclass
class Extraction:
    duration: float
    wav: Path | None
    frames: list[tuple[float, Path]] = field(default_factory=list)
    shot_cuts: list[float] = field(default_factory=list)
    activity: list[float] = field(default_factory=list)


def extract(path: str | Path, info: MediaInfo, workdir: Path, *, frame_interval: float,
            scene_threshold: float, name: str | None = None) -> Extraction:
    """Decode `path` once into `workdir`: audio.wav, frames/NNNNN.jpg, scene scores."""
    workdir.mkdir(parents=True, exist_ok=True)
    frames_dir = workdir / "frames"
    frames_dir.mkdir(exist_ok=True)
    scores_file = workdir / "scene_scores.txt"
    wav = workdir / "audio.wav" if info.has_audio else None
    # A video shorter than one sampling interval still gives its first frame (fps drops a last, partial
    # interval by default, and ffmpeg fails on an image sequence that gets no picture).
    eof = ":eof_action=pass" if info.duration < frame_interval else ""
    graph = (
        f"[0:{info.video_stream}]split=2[s][f];"
        f"[s]scale={SCENE_WIDTH}:-2:flags=fast_bilinear,select='gte(scene,0)',"
        f"metadata=print:key=lavfi.scene_score:file='{_filter_path(scores_file)}'[sv];"
        f"[f]fps=1/{frame_interval:g}:start_time=0{eof},scale={FRAME_WIDTH}:-2,setsar=1[fv]"
    )
    threads = ["-threads", "1"] if info.width * info.height <= SINGLE_THREAD_PIXELS else []
    args = [*threads, "-i", str(path), "-filter_complex", graph,
            "-map", "[sv]", "-f", "null", "-",
            "-map", "[fv]", "-q:v", "5", "-start_number", "0", str(frames_dir / "%05d.jpg")]
    if wav:
        # the sound on the picture's timeline, as the render plays it: silence before a track that starts
        # late (one starting 2 s after the picture was read as starting at 0) and after one that ends early
        # (a 2 s track on 6 s of picture had levels for 2 s only and counted as sound throughout)
        pad = f",apad=whole_dur={info.duration:.3f}" if info.duration > 0 else ""
        args += ["-map", "0:a:0", "-af", f"aresample=async=1:first_pts=0{pad}", "-ac", "1", "-ar", "16000",
                 "-c:a", "pcm_s16le", str(wav)]
    run_ffmpeg(args, what=f"analysing {name or path}")

    times, scores = parse_scene_scores(scores_file)
    frames = [(i * frame_interval, p) for i, p in enumerate(sorted(frames_dir.glob("*.jpg")))]
    decoded = times[-1] + 1 / max(info.fps, 1) if times else 0.0  # the picture's length, not the sound's
    return Extraction(duration=min(decoded, info.duration) if decoded else info.duration, wav=wav,
                      frames=frames, shot_cuts=shot_cuts(times, scores, scene_threshold),
                      activity=activity_per_second(times, scores))


def _filter_path(path: Path) -> str:
    """Escape a path for use inside a filtergraph option value."""
    return str(path).replace("\\", "/").replace(":", r"\:").replace("'", r"'\''")


def parse_scene_scores(scores_file: Path) -> tuple[list[float], list[float]]:
    times: list[float] = []
    scores: list[float] = []
    if not scores_file.exists():
        return times, scores
    with scores_file.open() as handle:
        for line in handle:
            if m := _FRAME_RE.search(line):
                times.append(float(m.group(1)))
            elif (m := _SCORE_RE.search(line)) and len(scores) < len(times):
                scores.append(float(m.group(1)))
    return times[: len(scores)], scores


def shot_cuts(times: list[float], scores: list[float], threshold: float) -> list[float]:
    """Times where a new shot starts: a scene score above threshold, at least MIN_SHOT after the last."""
    cuts: list[float] = []
    last = 0.0
    for t, score in zip(times, scores):
        if score >= threshold and t - last >= MIN_SHOT:
            cuts.append(round(t, 3))
            last = t
    return cuts


def activity_per_second(times: list[float], scores: list[float]) -> list[float]:
    """Mean scene score per whole second: how much the picture moves."""
    if not times:
        return []
    sums = [0.0] * (int(times[-1]) + 1)
    counts = [0] * len(sums)
    for t, score in zip(times, scores):
        sec = max(0, int(t))
        sums[sec] += score
        counts[sec] += 1
    return [round(s / c, 4) if c else 0.0 for s, c in zip(sums, counts)]


def wav_duration(wav: Path) -> float:
    with wave.open(str(wav)) as handle:
        return handle.getnframes() / float(handle.getframerate())


def loudness(wav: Path, step: float = LOUDNESS_STEP) -> list[float]:
    """RMS level in dBFS per `step` seconds, read in chunks so long files stay small in memory."""
    return audio_levels(wav, step)[0]


FLATNESS_FRAME = 256  # 16 ms at 16 kHz: short enough that a voice's harmonics show as peaks
_FLATNESS_FLOOR_DB = -70.0  # below this a step is digital silence: flatness 0, not "white noise"


def audio_levels(wav: Path, step: float = LOUDNESS_STEP) -> tuple[list[float], list[float]]:
    """Per `step` seconds: RMS level in dBFS, and spectral flatness (0-1; geometric over arithmetic mean of
    the power spectrum, 100 Hz-6 kHz). A steady tone is near 0, voices sit low, noise-like sound such as
    applause or cheering sits high. One read of the WAV, in chunks, so long files stay small in memory."""
    levels: list[float] = []
    flatness: list[float] = []
    with wave.open(str(wav)) as handle:
        rate = handle.getframerate()
        window = max(1, int(rate * step))
        freqs = np.fft.rfftfreq(FLATNESS_FRAME, 1.0 / rate)
        band = (freqs >= 100) & (freqs <= 6000)
        taper = np.hanning(FLATNESS_FRAME).astype(np.float32)
        while True:
            raw = handle.readframes(window * 240)
            if not raw:
                break
            samples = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0
            full = len(samples) // window * window
            blocks = [samples[:full].reshape(-1, window)] if full else []
            if len(samples) > full:
                blocks.append(samples[full:].reshape(1, -1))
            for block in blocks:
                rms = np.sqrt(np.mean(block * block, axis=1))
                db = [round(20 * math.log10(max(v, 1e-5)), 2) for v in rms]
                levels.extend(db)
                flatness.extend(_flatness(block, taper, band, db))
    return levels, flatness


def _flatness(block: np.ndarray, taper: np.ndarray, band: np.ndarray, db: list[float]) -> list[float]:
    frames = block.shape[1] // FLATNESS_FRAME
    if frames == 0:
        return [0.0] * block.shape[0]
    cut = block[:, : frames * FLATNESS_FRAME].reshape(block.shape[0], frames, FLATNESS_FRAME)
    power = np.abs(np.fft.rfft(cut * taper, axis=2)) ** 2
    power = power[:, :, band] + 1e-12
    per_frame = np.exp(np.mean(np.log(power), axis=2)) / np.mean(power, axis=2)
    # weighted by each frame's energy: the digital silence in a step that ends a word is not "white noise"
    energy = np.mean(power, axis=2)
    values = np.sum(per_frame * energy, axis=1) / np.maximum(np.sum(energy, axis=1), 1e-30)
    return [0.0 if level < _FLATNESS_FLOOR_DB else round(float(v), 3) for v, level in zip(values, db)]


def silences(levels: list[float], step: float, threshold_db: float) -> list[Interval]:
    """Stretches of at least MIN_SILENCE below threshold_db (or well below the file's own loud parts)."""
    if not levels:
        return []
    loud = float(np.percentile(levels, 95))
    threshold = min(threshold_db, loud - 25.0) if loud > threshold_db else threshold_db
    found: list[Interval] = []
    start = None
    for i, level in enumerate(levels + [0.0]):
        quiet = level < threshold and i < len(levels)
        if quiet and start is None:
            start = i
        elif not quiet and start is not None:
            if (i - start) * step >= MIN_SILENCE:
                found.append(Interval(start=round(start * step, 3), end=round(i * step, 3)))
            start = None
    return found


def voiced(silent: list[Interval], duration: float) -> list[Interval]:
    """The complement of the silences: stretches with sound worth hearing."""
    out: list[Interval] = []
    cursor = 0.0
    for gap in silent + [Interval(start=duration, end=duration)]:
        if gap.start - cursor >= MIN_SPEECH:
            out.append(Interval(start=round(cursor, 3), end=round(min(gap.start, duration), 3)))
        cursor = max(cursor, gap.end)
    return out
