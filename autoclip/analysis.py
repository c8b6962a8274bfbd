"""Analyse one video: one decode, then speech, vision and loudness, into a VideoAnalysis.

Plain Python (no Prefect): the analysis task wraps it with caching and retries.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from functools import lru_cache
from pathlib import Path

import autoclip
from autoclip.config import Settings
from autoclip.media import extract as ex
from autoclip.models import Interval, SourceVideo, VideoAnalysis
from autoclip.providers import speech_recognizer, vision_describer

_ANALYSIS_CODE = ("analysis.py", "media/extract.py", "providers/local.py", "providers/__init__.py")


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus a hash of the analysis code, so a code change invalidates cached analyses."""
    root = Path(autoclip.__file__).parent
    digest = hashlib.sha256()
    for name in _ANALYSIS_CODE:
        digest.update((root / name).read_bytes())
    return f"{autoclip.__version__}-{digest.hexdigest()[:10]}"


def analysis_cache_key(sha256: str, settings: Settings) -> str:
    return f"autoclip-analysis-{sha256}-{settings.analysis_fingerprint()}-{code_version()}"


def shots_with_frames(cuts: list[float], duration: float, frames: list[tuple[float, Path]], per_shot: int = 3):
    bounds = [0.0] + cuts + [duration]
    shots = []
    for a, b in zip(bounds, bounds[1:]):
        inside = [p for t, p in frames if a <= t < b]
        if inside:
            step = max(1, len(inside) // per_shot)
            shots.append((Interval(start=a, end=b), inside[::step][:per_shot]))
    return shots


def analyze(video: SourceVideo, workdir: Path, settings: Settings) -> VideoAnalysis:
    """Everything the planner needs about `video`; scratch files live in `workdir` and are removed."""
    started = time.perf_counter()
    try:
        extraction = ex.extract(video.path, video.info, workdir, frame_interval=settings.frame_interval,
                                scene_threshold=settings.scene_threshold, name=video.source)
        analysers = {"shots": f"ffmpeg scene>{settings.scene_threshold}", "loudness": "rms"}
        levels, silent, voiced, transcript, captions = [], [], [], None, []
        if extraction.wav:
            levels = ex.loudness(extraction.wav)
            silent = ex.silences(levels, ex.LOUDNESS_STEP, settings.silence_db)
            voiced = ex.voiced(silent, extraction.duration)
            recognizer = speech_recognizer(settings)
            if recognizer and voiced:
                transcript = recognizer.transcribe(extraction.wav, settings.language)
                analysers["speech"] = recognizer.name
            else:
                analysers["speech"] = "energy (no speech model)" if not recognizer else "none (silent)"
        describer = vision_describer(settings)
        if describer and extraction.frames:
            captions = describer.describe(shots_with_frames(extraction.shot_cuts, extraction.duration,
                                                            extraction.frames))
            analysers["vision"] = describer.name
        return VideoAnalysis(
            sha256=video.sha256, duration=round(extraction.duration, 3), shot_cuts=extraction.shot_cuts,
            activity=extraction.activity, loudness_step=ex.LOUDNESS_STEP, loudness_db=levels,
            silences=silent, speech=voiced, transcript=transcript, captions=captions, analysers=analysers,
            seconds=round(time.perf_counter() - started, 3))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
