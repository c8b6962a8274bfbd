"""Analyse one video: one decode, then speech, vision and loudness, into a VideoAnalysis.

Plain Python (no Prefect): the analysis task wraps it with caching and retries.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from functools import lru_cache
from pathlib import Path

import autoclip
from autoclip.config import Settings
from autoclip.media import extract as ex
from autoclip.errors import ProviderAuthError, ProviderError
from autoclip.models import Interval, SourceVideo, Transcript, Usage, VideoAnalysis, add_usage
from autoclip.providers import Secrets, local_speech, speech_recognizer, stage_signature, vision_describer

log = logging.getLogger("autoclip.analysis")

# The code whose change changes an analysis (planning code is not here: editing the planner must not
# throw away every cached analysis).
_ANALYSIS_CODE = ("analysis.py", "media/extract.py", "providers/whisper.py", "providers/__init__.py",
                  "providers/dashscope.py", "providers/chat.py", "providers/vision.py",
                  "providers/openai_compat.py")


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus a hash of the analysis code, so a code change invalidates cached analyses."""
    root = Path(autoclip.__file__).parent
    digest = hashlib.sha256()
    for name in _ANALYSIS_CODE:
        digest.update((root / name).read_bytes())
    return f"{autoclip.__version__}-{digest.hexdigest()[:10]}"


def analysis_cache_key(sha256: str, settings: Settings, secrets: Secrets) -> str:
    engines = hashlib.sha256(stage_signature(settings, secrets).encode()).hexdigest()[:8]
    return f"autoclip-analysis-{sha256}-{settings.analysis_fingerprint()}-{engines}-{code_version()}"


def shots_with_frames(cuts: list[float], duration: float, frames: list[tuple[float, Path]], per_shot: int = 3):
    bounds = [0.0] + cuts + [duration]
    shots = []
    for a, b in zip(bounds, bounds[1:]):
        inside = [p for t, p in frames if a <= t < b]
        if inside:
            step = max(1, len(inside) // per_shot)
            shots.append((Interval(start=a, end=b), inside[::step][:per_shot]))
    return shots


def audio_url_maker(settings: Settings, sha256: str):
    """With an object-store backend, Paraformer's file route gets the WAV as a presigned URL (the service
    cannot read local files); without one it is streamed over the websocket."""
    if settings.storage_backend == "local" or not settings.output_uri:
        return None
    from autoclip.storage.objects import presign, split_uri, upload

    def make(wav: Path) -> str:
        uri = f"{settings.output_uri.rstrip('/')}/_audio/{sha256}.wav"
        config = settings.object_store(split_uri(uri)[0])
        upload(wav, uri, config)
        return presign(uri, config, settings.presign_expiry)

    return make


def transcribe(wav: Path, settings: Settings, secrets: Secrets, analysers: dict[str, str],
               usage: dict[str, Usage], audio_url=None) -> Transcript | None:
    """Speech with the chosen engine; when a remote one fails, say so and fall back to the local one."""
    recognizer = speech_recognizer(settings, secrets, audio_url)
    if recognizer is None:
        analysers["speech"] = "energy (no speech model)"
        return None
    try:
        transcript = recognizer.transcribe(wav, settings.language)
        analysers["speech"] = recognizer.name
        return transcript
    except ProviderAuthError:
        raise
    except ProviderError as exc:
        fallback = local_speech(settings)
        log.warning("speech recognition failed, using %s instead: %s",
                    fallback.name if fallback else "loudness only", exc)
        analysers["speech"] = f"{recognizer.name} failed ({exc}); " + (
            fallback.name if fallback else "energy (no speech model)")
        return fallback.transcribe(wav, settings.language) if fallback else None
    finally:
        usage.update(add_usage(usage, getattr(recognizer, "usage", {}) or {}))


def analyze(video: SourceVideo, workdir: Path, settings: Settings, secrets: Secrets | None = None) -> VideoAnalysis:
    """Everything the planner needs about `video`; scratch files live in `workdir` and are removed."""
    started = time.perf_counter()
    secrets = secrets or Secrets.from_settings(settings)
    try:
        extraction = ex.extract(video.path, video.info, workdir, frame_interval=settings.frame_interval,
                                scene_threshold=settings.scene_threshold, name=video.source)
        analysers = {"shots": f"ffmpeg scene>{settings.scene_threshold}", "loudness": "rms"}
        usage: dict[str, Usage] = {}
        levels, flatness, silent, voiced, transcript, captions = [], [], [], [], None, []
        if extraction.wav:
            levels, flatness = ex.audio_levels(extraction.wav)
            silent = ex.silences(levels, ex.LOUDNESS_STEP, settings.silence_db)
            voiced = ex.voiced(silent, extraction.duration)
            if voiced:
                transcript = transcribe(extraction.wav, settings, secrets, analysers, usage,
                                        audio_url_maker(settings, video.sha256))
            else:
                analysers["speech"] = "none (silent)"
        describer = vision_describer(settings, secrets)
        if describer and extraction.frames:
            captions = describer.describe(shots_with_frames(extraction.shot_cuts, extraction.duration,
                                                            extraction.frames))
            failures = getattr(describer, "failures", [])
            analysers["vision"] = describer.name + (f" ({len(failures)} batch(es) failed: {failures[0]})"
                                                    if failures else "")
            usage = add_usage(usage, getattr(describer, "usage", {}) or {})
        return VideoAnalysis(
            sha256=video.sha256, duration=round(extraction.duration, 3), shot_cuts=extraction.shot_cuts,
            activity=extraction.activity, loudness_step=ex.LOUDNESS_STEP, loudness_db=levels, flatness=flatness,
            silences=silent, speech=voiced, transcript=transcript, captions=captions, analysers=analysers,
            usage=usage, seconds=round(time.perf_counter() - started, 3))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
