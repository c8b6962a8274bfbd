"""The offline Whisper provider: model assembly from the wheels, model choice per job, and the checks that
drop words Whisper makes up (silence, low confidence, loops). Real models on real audio where it matters."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from autoclip.errors import ProviderError
from autoclip.media.ffmpeg import run_ffmpeg
from autoclip.providers import whisper, whisper_models
from autoclip.providers.whisper import (WhisperRecognizer, _Piece, collapse_repeats, hallucinated_segment,
                                        resolve_whisper_model, word_in_silence)

needs_base = pytest.mark.skipif(not whisper_models.base_installed(), reason="speech extra not installed")
needs_both = pytest.mark.skipif(not (whisper_models.base_installed() and whisper_models.tiny_en()),
                                reason="speech extra not installed")


def _wav(source: Path, out: Path, start: float | None = None, seconds: float | None = None) -> Path:
    cut = (["-ss", str(start)] if start is not None else []) + (["-t", str(seconds)] if seconds else [])
    run_ffmpeg(["-i", str(source), *cut, "-vn", "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(out)],
               what=f"WAV from {source.name}")
    return out


def _cache() -> Path:
    return Path(os.environ["AUTOCLIP_CACHE_DIR"])


@needs_base
def test_base_model_is_joined_once_atomically_and_checked(tmp_path):
    model = whisper_models.base(tmp_path)
    assert model.path == tmp_path / "models" / "whisper-base" and not model.english_only
    assert (model.path / "model.bin").stat().st_size == whisper_models.BASE_SIZE
    assert sorted(p.name for p in model.path.iterdir()) == ["config.json", "model.bin", "tokenizer.json",
                                                            "vocabulary.txt"]
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["whisper-base"]  # no staging left behind
    with open(model.path / "model.bin", "r+b") as handle:  # damage it: the next process must rebuild it
        handle.seek(1000)
        handle.write(b"\0" * 16)
    whisper_models._assembled.clear()
    assert whisper_models.base(tmp_path).path == model.path
    assert whisper_models._verified(model.path)


@needs_base
def test_a_model_that_does_not_match_its_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(whisper_models, "BASE_SHA256", "0" * 64)
    with pytest.raises(ProviderError, match="does not match its sha256"):
        whisper_models.base(tmp_path / "other")


def test_model_settings_resolve_to_specs_and_bad_directories_are_named(tmp_path):
    assert resolve_whisper_model("none") is None and resolve_whisper_model("off") is None
    assert resolve_whisper_model(" Base ") == "base" and resolve_whisper_model("tiny.en") == "tiny.en"
    assert resolve_whisper_model(str(tmp_path)) == str(tmp_path)
    if whisper_models.base_installed() or whisper_models.tiny_en():
        assert resolve_whisper_model(None) == resolve_whisper_model("auto") == "auto"
    with pytest.raises(ProviderError, match=f"{tmp_path}.*not a CTranslate2 model directory"):
        whisper.model_info(str(tmp_path))


@needs_both
def test_the_recogniser_names_its_models_by_name_and_path(tmp_path):
    identity = WhisperRecognizer("auto", cache_dir=tmp_path).identity
    assert identity.startswith("auto[tiny.en=") and f"base={tmp_path / 'models' / 'whisper-base'}" in identity
    assert WhisperRecognizer("base", cache_dir=tmp_path).identity == f"base={tmp_path / 'models' / 'whisper-base'}"


def test_low_confidence_loops_and_stock_phrases_count_as_invented():
    assert hallucinated_segment("Banana", no_speech_prob=0.8, avg_logprob=-1.3, compression_ratio=1.0)
    assert hallucinated_segment("la la la la la la la la la la la la", 0.1, -0.3, compression_ratio=3.1)
    assert hallucinated_segment("Thank you for watching!", no_speech_prob=0.4, avg_logprob=-0.4,
                                compression_ratio=1.0)
    assert hallucinated_segment("谢谢观看", no_speech_prob=0.1, avg_logprob=-0.9, compression_ratio=1.0)
    # the same words, said with confidence, are speech
    assert not hallucinated_segment("Thank you for watching!", 0.01, -0.2, 1.0)
    assert not hallucinated_segment("When the time reaches 40 seconds", 0.05, -0.25, 1.3)


def _pieces(words: list[str]) -> list[_Piece]:
    return [_Piece(i * 0.3, i * 0.3 + 0.25, w, " " + w) for i, w in enumerate(words)]


def test_repeated_ngrams_keep_two_copies():
    def texts(words):
        return [p.text for p in collapse_repeats(_pieces(words))]

    assert texts(["go"] * 6) == ["go", "go"]
    assert texts("thank you thank you thank you thank you so much".split()) == \
        "thank you thank you so much".split()
    assert texts(list("谢谢谢谢谢谢谢谢")) == list("谢谢谢谢")
    assert texts("a b c a b d".split()) == "a b c a b d".split()  # no loop, nothing dropped


def test_words_over_silence_are_found_by_loudness():
    rate = whisper.RATE
    samples = np.zeros(rate * 3, dtype=np.float32)
    t = np.arange(rate) / rate
    samples[rate:2 * rate] = 0.2 * np.sin(2 * np.pi * 220 * t)  # one second of sound, then silence
    assert word_in_silence(samples, 0.2, 0.8) and word_in_silence(samples, 2.1, 2.9)
    assert not word_in_silence(samples, 1.2, 1.5)
    assert not word_in_silence(samples, 0.8, 1.05)  # a word that ends in the sound was spoken


def test_subword_pieces_join_into_words_and_punctuation_joins_the_word_before():
    raw = [" Auto", "C", "ut", "这是", "，", "一", " AI", "."]
    pieces = [_Piece(i, i + 1, r.strip(), r) for i, r in enumerate(raw)]
    assert [p.text for p in whisper._merge_subwords(pieces)] == ["AutoCut", "这是，", "一", "AI."]


@needs_both
def test_shipped_sample_uses_the_english_model_and_keeps_its_silence_empty(sample_speech, tmp_path):
    wav = _wav(sample_speech, tmp_path / "sample.wav")
    transcript = WhisperRecognizer("auto", cache_dir=_cache()).transcribe(wav)
    assert transcript.engine == "faster-whisper:tiny.en" and transcript.language == "en"
    words = [w for s in transcript.sentences for w in s.words]
    # 17.5-39.8 s is digital silence: no word and no sentence may lie in it or stretch over it
    assert not [w.text for w in words if w.end > 17.6 and w.start < 39.8]
    assert all(s.end <= 17.6 or s.start >= 39.8 for s in transcript.sentences)
    assert sum("banana" in w.text.lower() for w in words if w.start < 17.6) == 1  # "I will say banana."
    assert all(s.end - s.start < 15 for s in transcript.sentences)


@needs_base
def test_silence_and_faint_noise_give_no_words(tmp_path):
    wav = tmp_path / "noise.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "anoisesrc=color=pink:amplitude=0.003:duration=12:seed=7", "-ac", "1",
                "-ar", "16000", "-c:a", "pcm_s16le", str(wav)], what="faint noise")
    transcript = WhisperRecognizer("base", cache_dir=_cache()).transcribe(wav)
    assert transcript.sentences == []


@needs_base
def test_mixed_chinese_and_english_is_detected_per_chunk_in_simplified_characters(shared_media, tmp_path):
    clip = shared_media / "autocut_test002_zh_en.mov"
    if not clip.exists():
        pytest.skip(f"{clip.name} not in {shared_media}")
    wav = _wav(clip, tmp_path / "mixed.wav")
    transcript = WhisperRecognizer("auto", cache_dir=_cache()).transcribe(wav)
    assert transcript.engine == "faster-whisper:base"
    chinese = [s for s in transcript.sentences if s.end <= 5.0]
    english = [s for s in transcript.sentences if s.start >= 5.0]
    assert chinese and english, [s.text for s in transcript.sentences]
    text = "".join(s.text for s in chinese)
    assert "大家好" in text and "视频" in text and "視" not in text  # Simplified, the Chinese part kept
    assert " " not in text.replace(" AutoCut", "")  # no spaces between Chinese words
    assert "testing" in " ".join(s.text for s in english).lower()  # the English part was not dropped


@needs_base
def test_traditional_script_on_request(shared_media, tmp_path):
    clip = shared_media / "autocut_test002_zh_en.mov"
    if not clip.exists():
        pytest.skip(f"{clip.name} not in {shared_media}")
    wav = _wav(clip, tmp_path / "zh.wav", seconds=5.0)
    transcript = WhisperRecognizer("base", cache_dir=_cache(), chinese="traditional").transcribe(wav, "zh")
    assert transcript.language == "zh" and "視頻" in transcript.text


@needs_both
def test_doctor_lines_name_the_models_and_their_languages(tmp_path):
    from autoclip.providers.whisper import speech_report

    lines = speech_report(None, tmp_path, None, "simplified")
    texts = [text for _, _, text in lines]
    assert all(good for _, good, _ in lines)
    assert any(t.startswith("Whisper tiny.en: English only") for t in texts)
    assert any(t.startswith("Whisper base: 99 languages") and "joined from its wheels on first use" in t
               for t in texts)
    assert any(t.startswith("auto: base detects the language of each speech chunk") for t in texts)
    assert not (tmp_path / "models").exists()  # reporting joins nothing
    bad = speech_report(str(tmp_path / "nope"), tmp_path, None, "simplified")
    assert [(name, good) for name, good, _ in bad if name == "speech"] == [("speech", False)]


@needs_both
def test_a_fixed_language_picks_the_model_without_listening(tmp_path):
    english = whisper._Job(WhisperRecognizer("auto", cache_dir=tmp_path), ["en"])
    assert english.info.name == "tiny.en" and english.decided
    assert not (tmp_path / "models").exists()  # English-only jobs never join the base model
    chinese = whisper._Job(WhisperRecognizer("auto", cache_dir=tmp_path), ["zh"])
    assert chinese.info.name == "base" and chinese.decided and chinese.main_language() == "zh"
    undecided = whisper._Job(WhisperRecognizer("auto", cache_dir=tmp_path), ["zh", "en"])
    assert undecided.info.name == "base" and not undecided.decided  # listens before choosing


@needs_both
def test_the_analysis_key_names_the_speech_models(tmp_path):
    from autoclip.config import Settings
    from autoclip.providers import Secrets, stage_signature

    settings = Settings(_env_file=None, provider="local", cache_dir=tmp_path)
    signature = stage_signature(settings, Secrets())
    assert f"base={tmp_path / 'models' / 'whisper-base'}" in signature and "tiny.en=" in signature
    off = Settings(_env_file=None, provider="local", cache_dir=tmp_path, whisper_model="none")
    assert stage_signature(off, Secrets()) == "speech=local(none),vision=local"


@needs_base
def test_generated_mixed_chinese_and_english_keeps_both_languages(mixed_talk, tmp_path):
    """Chinese from the test voice and English from espeak-ng, alternating: each sentence is heard in its
    own language, the Chinese in Simplified characters without spaces (tests/mandarin.py)."""
    from autoclip.text import chinese_script, has_cjk

    transcript = WhisperRecognizer("auto", cache_dir=_cache()).transcribe(_wav(mixed_talk.video, tmp_path / "m.wav"))
    for start, end, language, said in mixed_talk.sentences:
        heard = " ".join(s.text for s in transcript.sentences if s.start < end and s.end > start)
        assert heard, (said, [s.text for s in transcript.sentences])
        if language == "zh":
            assert has_cjk(heard) and " " not in heard.strip(), heard
            assert chinese_script(heard, "simplified") == heard, heard
            assert "咖啡" in heard, heard  # what both Chinese sentences are about
        else:
            assert not has_cjk(heard) and "coffee" in heard.lower(), heard
