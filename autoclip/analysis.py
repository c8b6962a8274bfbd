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
_ANALYSIS_CODE = ("analysis.py", "text.py", "media/extract.py", "providers/whisper.py", "providers/whisper_models.py",
                  "providers/__init__.py",
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


def speech_model_identity(settings: Settings) -> str:
    """The speech model the setting resolves to, by what it is: `auto` becomes the bundled model once the
    speech extra is installed (and nothing before), so the key must hold the resolved model, its path and
    a stamp of its files, not the setting."""
    from autoclip.providers.whisper import resolve_whisper_model

    model = resolve_whisper_model(settings.whisper_model)
    if not model:
        return "none"
    path = Path(model)
    if path.exists():
        files = sorted(p for p in (path.rglob("*") if path.is_dir() else [path]) if p.is_file())
        stamp = [(p.name, p.stat().st_size) for p in files]
        return f"{path.resolve()}:{hashlib.sha256(repr(stamp).encode()).hexdigest()[:12]}"
    return model  # a model name (downloaded by faster-whisper): the name is its identity


def analysis_cache_key(sha256: str, settings: Settings, secrets: Secrets) -> str:
    engines = f"{stage_signature(settings, secrets)},whisper={speech_model_identity(settings)}"
    digest = hashlib.sha256(engines.encode()).hexdigest()[:8]
    return f"autoclip-analysis-{sha256}-{settings.analysis_fingerprint()}-{digest}-{code_version()}"


def shots_with_frames(cuts: list[float], duration: float, frames: list[tuple[float, Path]], per_shot: int = 3):
    bounds = [0.0] + cuts + [duration]
    shots = []
    for a, b in zip(bounds, bounds[1:]):
        inside = [p for t, p in frames if a <= t < b]
        if inside:
            step = max(1, len(inside) // per_shot)
            shots.append((Interval(start=a, end=b), inside[::step][:per_shot]))
    return shots


class AudioUpload:
    """Paraformer's file route needs a URL the service can fetch: the WAV is uploaded next to the
    outputs (`_audio/<sha256>.wav`) and presigned; `remove()` deletes it once the transcription is done."""

    def __init__(self, settings: Settings, sha256: str):
        self.settings = settings
        self.uri = f"{settings.output_uri.rstrip('/')}/_audio/{sha256}.wav"
        self.uploaded = False

    def __call__(self, wav: Path) -> str:
        from autoclip.storage.objects import presign, split_uri, upload

        config = self.settings.object_store(split_uri(self.uri)[0])
        upload(wav, self.uri, config)
        self.uploaded = True
        return presign(self.uri, config, self.settings.presign_expiry)

    def remove(self) -> None:
        if not self.uploaded:
            return
        from autoclip.storage.objects import split_uri

        scheme, bucket, key = split_uri(self.uri)
        config = self.settings.object_store(scheme)
        try:
            if scheme == "oss" and config.addressing_style != "path":
                config.oss_bucket(bucket).delete_object(key)
            else:
                config.filesystem().rm_file(f"{bucket}/{key}")
            self.uploaded = False
        except Exception as exc:  # noqa: BLE001 - a leftover object is worth a warning, not a failed video
            log.warning("could not delete the uploaded audio %s: %s", self.uri, exc)


def audio_url_maker(settings: Settings, sha256: str) -> AudioUpload | None:
    """With an object-store backend, Paraformer's file route gets the WAV as a presigned URL (the service
    cannot read local files); without one it is streamed over the websocket."""
    if settings.storage_backend == "local" or not settings.output_uri:
        return None
    return AudioUpload(settings, sha256)


def transcribe(wav: Path, settings: Settings, secrets: Secrets, analysers: dict[str, str],
               usage: dict[str, Usage], audio_url=None, notes: list[str] | None = None) -> Transcript | None:
    """Speech with the chosen engine; when a remote one fails, say so (in `notes`, which marks the
    analysis degraded) and fall back to the local one. A refused key is not a fallback: it stops."""
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
        instead = fallback.name if fallback else "loudness only (no speech model)"
        log.warning("speech recognition failed, using %s instead: %s", instead, exc)
        analysers["speech"] = f"{recognizer.name} failed ({exc}); " + (
            fallback.name if fallback else "energy (no speech model)")
        if notes is not None:
            notes.append(f"speech fell back from {recognizer.name} to {instead}: {exc}")
        return fallback.transcribe(wav, settings.language) if fallback else None
    finally:
        usage.update(add_usage(usage, getattr(recognizer, "usage", {}) or {}))
        if isinstance(audio_url, AudioUpload):
            audio_url.remove()


def analyze(video: SourceVideo, workdir: Path, settings: Settings, secrets: Secrets | None = None) -> VideoAnalysis:
    """Everything the planner needs about `video`; scratch files live in `workdir` and are removed."""
    started = time.perf_counter()
    secrets = secrets or Secrets.from_settings(settings)
    try:
        extraction = ex.extract(video.path, video.info, workdir, frame_interval=settings.frame_interval,
                                scene_threshold=settings.scene_threshold, name=video.source)
        analysers = {"shots": f"ffmpeg scene>{settings.scene_threshold}", "loudness": "rms"}
        usage: dict[str, Usage] = {}
        notes: list[str] = []
        degraded = False
        levels, flatness, silent, voiced, transcript, captions = [], [], [], [], None, []
        if extraction.wav:
            levels, flatness = ex.audio_levels(extraction.wav)
            silent = ex.silences(levels, ex.LOUDNESS_STEP, settings.silence_db)
            voiced = ex.voiced(silent, extraction.duration)
            if voiced:
                transcript = transcribe(extraction.wav, settings, secrets, analysers, usage,
                                        audio_url_maker(settings, video.sha256), notes)
                degraded = bool(notes)
            else:
                analysers["speech"] = "none (silent)"
        describer = vision_describer(settings, secrets)
        if describer and extraction.frames:
            captions = describer.describe(shots_with_frames(extraction.shot_cuts, extraction.duration,
                                                            extraction.frames))
            failures = getattr(describer, "failures", [])
            analysers["vision"] = describer.name + (f" ({len(failures)} batch(es) failed: {failures[0]})"
                                                    if failures else "")
            notes += [f"vision {describer.name}: {failure}" for failure in failures]
            degraded = degraded or getattr(describer, "retry_later", False)
            usage = add_usage(usage, getattr(describer, "usage", {}) or {})
        return VideoAnalysis(
            sha256=video.sha256, duration=round(extraction.duration, 3), shot_cuts=extraction.shot_cuts,
            activity=extraction.activity, loudness_step=ex.LOUDNESS_STEP, loudness_db=levels, flatness=flatness,
            silences=silent, speech=voiced, transcript=transcript, captions=captions, analysers=analysers,
            usage=usage, seconds=round(time.perf_counter() - started, 3), notes=notes, degraded=degraded)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
