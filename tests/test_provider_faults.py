"""Issue 11: the DashScope path under real faults, against the stand-in that speaks the wire protocol to
the real SDK. Each test is named after the defect it guards: never hang, never cache a failure, degrade
per item, say every fallback, stop on a refused key, count what is billed, clean up, join CJK words."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from autoclip.config import get_settings
from autoclip.errors import ProviderAuthError, ProviderError
from autoclip.models import Interval
from autoclip.planning.llm import language_model
from autoclip.planning.two_pass import decide_theme
from autoclip.providers import Secrets, speech_recognizer, vision_describer
from autoclip.providers.dashscope import sentences_from_paraformer

from tests.dashscope_standin import STANDIN_KEY, standin_settings, content, delay, reset, stall, status, task_failed
from tests.test_dashscope import _digests, _wav

KEY = STANDIN_KEY


@pytest.fixture
def ds(standin, monkeypatch, tmp_path):
    """Every stage on the stand-in, short timeouts and back-off, a fresh response cache."""
    return standin_settings(standin, monkeypatch, tmp_path, AUTOCLIP_WHISPER_MODEL="none")


def _frames(tmp_path, shots: int, per_shot: int = 2):
    """Tiny real JPEGs (one per frame), as extraction would leave them."""
    from autoclip.media.ffmpeg import run_ffmpeg

    out = []
    for shot in range(shots):
        frames = []
        for n in range(per_shot):
            path = tmp_path / f"s{shot}_{n}.jpg"
            run_ffmpeg(["-f", "lavfi", "-i", f"color=c=0x{shot * 40:02x}20{n * 60:02x}:s=32x32:d=0.04",
                        "-frames:v", "1", str(path)], what="a test frame")
            frames.append(path)
        out.append((Interval(start=shot * 2.0, end=shot * 2.0 + 2.0), frames))
    return out


# ------------------------------------------------------------------------------- 1. never hang

def test_stalled_websocket_gives_up_on_time_and_leaves_no_thread_to_wait_for(ds, standin, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCLIP_RETRY_ATTEMPTS", "1")
    get_settings.cache_clear()
    standin.script("asr-ws", stall())
    before = {t.ident for t in threading.enumerate()}
    started = time.monotonic()
    with pytest.raises(ProviderError, match="no result within"):
        speech_recognizer(get_settings()).transcribe(_wav(tmp_path / "a.wav", 2.0), "en")
    waited = time.monotonic() - started
    limit = 2 + 2.0 * 1.5  # request timeout + 1.5 x the audio
    assert limit - 0.5 <= waited <= limit + 2
    assert standin.log[0]["status"] == "stalled"
    # whatever is still winding down is a daemon thread: the interpreter never waits for it at exit
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive() and not t.daemon]
    assert left == [], left


def test_slow_endpoint_ends_within_the_provider_budget_and_falls_back_loudly(ds, standin, monkeypatch):
    monkeypatch.setenv("AUTOCLIP_REQUEST_TIMEOUT", "1")
    monkeypatch.setenv("AUTOCLIP_RETRY_ATTEMPTS", "10")
    monkeypatch.setenv("AUTOCLIP_PROVIDER_BUDGET", "3.5")
    get_settings.cache_clear()
    standin.script("text", *[delay(5)] * 10)
    started = time.monotonic()
    theme, info = decide_theme(language_model(get_settings()), _digests())
    took = time.monotonic() - started
    assert took <= 3.5 + 1.0, took
    assert theme.title and "pass 1 fell back to the heuristic planner" in info.notes[0]
    assert "AUTOCLIP_PROVIDER_BUDGET" in info.notes[0]
    assert 2 <= len([e for e in standin.log if e["kind"] == "text"]) <= 4
    print(f"\nslow endpoint: pass 1 ended after {took:.2f} s with a budget of 3.5 s")


def test_retry_after_is_honoured_and_capped_with_one_line_per_retry(ds, standin, monkeypatch, caplog):
    monkeypatch.setenv("AUTOCLIP_RETRY_AFTER_MAX", "2")
    get_settings.cache_clear()
    standin.script("text", status(429, retry_after=1.2), status(503, retry_after=30))
    caplog.set_level(logging.INFO)
    theme, _ = language_model(get_settings()).theme(_digests())
    assert theme.title.startswith("Stand-in theme")
    at = [e["at"] for e in standin.log if e["kind"] == "text"]
    assert len(at) == 3
    assert 1.2 <= at[1] - at[0] <= 1.2 + 0.5  # as the server asked
    assert 2.0 <= at[2] - at[1] <= 2.0 + 0.5  # 30 s asked, capped by AUTOCLIP_RETRY_AFTER_MAX
    print(f"\nRetry-After: asked 1.2 s, waited {at[1] - at[0]:.2f} s; asked 30 s (cap 2 s), waited "
          f"{at[2] - at[1]:.2f} s")
    retries = [r for r in caplog.records if r.name == "autoclip.retry"]
    assert len(retries) == 2 and all("as the server asked" in r.getMessage() for r in retries)


_PASS_1 = """
import logging
from autoclip.config import get_settings
from autoclip.planning.llm import language_model
from autoclip.planning.two_pass import decide_theme
from tests.test_dashscope import _digests
logging.basicConfig(level=logging.WARNING)  # what a user's console shows
theme, info = decide_theme(language_model(get_settings()), _digests())
print(info.notes[0])
"""


def test_connection_resets_are_retried_by_us_alone_without_tracebacks(ds, standin, monkeypatch):
    import os
    import subprocess
    import sys

    monkeypatch.setenv("AUTOCLIP_RETRY_ATTEMPTS", "3")
    standin.script("text", *[reset()] * 6)
    run = subprocess.run([sys.executable, "-c", _PASS_1], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ), cwd=str(Path(__file__).parent.parent))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "pass 1 fell back" in run.stdout and "gave up after 3 tries" in run.stdout
    assert [e["status"] for e in standin.log] == ["reset"] * 3  # the SDK's own retry-once is off
    assert "Traceback" not in run.stderr, run.stderr[-2000:]
    retry_lines = [line for line in run.stderr.splitlines() if "autoclip.retry" in line]
    assert len(retry_lines) == 2 and len(run.stderr.splitlines()) <= 3, run.stderr


# --------------------------------------------------------------------------- 2. never cache a failure

def test_an_invalid_answer_is_not_cached_so_a_rerun_asks_again(ds, standin):
    standin.script("text", content("not json"), content("still not json"))
    theme, info = decide_theme(language_model(ds), _digests())
    assert "pass 1 fell back" in info.notes[0]
    sent = len(standin.log)
    assert sent == 2
    again, info2 = decide_theme(language_model(ds), _digests())
    assert len(standin.log) == sent + 1 and not info2.notes  # asked again, and got a valid answer
    assert again.title.startswith("Stand-in theme")
    third, info3 = decide_theme(language_model(ds), _digests())
    assert len(standin.log) == sent + 1 and info3.usage["qwen-plus"].cached_calls == 1  # valid: cached


# ------------------------------------------------------------------------------ 3. per-item degradation

def test_a_refused_vision_batch_leaves_the_other_batches_captioned(ds, standin, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOCLIP_VISION_FRAMES_PER_CALL", "2")
    get_settings.cache_clear()
    standin.script("vision", status(400, "DataInspectionFailed"))
    describer = vision_describer(get_settings())
    captions = describer.describe(_frames(tmp_path, shots=3))
    assert [c.start for c in captions] == [2.0, 4.0]  # shot 1 refused, shots 2 and 3 captioned
    assert all(c.caption.startswith("stand-in caption") for c in captions)
    assert len(describer.failures) == 1 and "DataInspectionFailed" in describer.failures[0]
    assert not describer.retry_later  # a refusal is the content's, a later run would meet it again


def test_a_refused_pass_1_prompt_falls_back_to_the_heuristic_theme(ds, standin):
    standin.script("text", status(400, "DataInspectionFailed"))
    theme, info = decide_theme(language_model(ds), _digests())
    assert theme.title and info.notes and "DataInspectionFailed" in info.notes[0]
    assert len(standin.log) == 1  # not retried


# ---------------------------------------------------------------------------- 5. a refused key stops

def test_a_401_task_failed_on_the_websocket_stops_before_any_fallback(ds, standin, tmp_path):
    from autoclip.analysis import transcribe

    standin.script("asr-ws", task_failed("Invalid API-key provided.", code="InvalidApiKey"))
    analysers, usage = {}, {}
    with pytest.raises(ProviderAuthError) as caught:
        transcribe(_wav(tmp_path / "k.wav", 2.0), ds, Secrets.from_settings(ds), analysers, usage)
    assert str(caught.value).startswith("DashScope refused the key (")
    assert str(caught.value).endswith("check DASHSCOPE_API_KEY")
    assert "speech" not in analysers  # no local fallback was run


def test_preflight_finds_a_refused_key_with_one_free_request(ds, standin, monkeypatch):
    from autoclip.providers import preflight

    preflight(ds)  # the right key passes
    assert [e["kind"] for e in standin.log] == ["asr-poll"] and standin.log[0]["status"] == 200
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-wrong-key-456")
    get_settings.cache_clear()
    with pytest.raises(ProviderAuthError, match=r"DashScope refused the key \(.*401.*\): check DASHSCOPE_API_KEY"):
        preflight(get_settings())
    assert len(standin.log) == 2


# ------------------------------------------------------------------------------- 6. cost as billed

def test_usage_equals_what_the_standin_billed_including_repaired_and_failed_passes(ds, standin, tmp_path,
                                                                                  monkeypatch):
    monkeypatch.setenv("AUTOCLIP_VISION_FRAMES_PER_CALL", "2")
    get_settings.cache_clear()
    settings = get_settings()
    describer = vision_describer(settings)
    describer.describe(_frames(tmp_path, shots=2))
    standin.script("text", content("not json"), content("{}"))  # pass 1: invalid, repair invalid: fallback
    _, info = decide_theme(language_model(settings), _digests())
    assert "pass 1 fell back" in info.notes[0]
    billed = standin.billed()
    vision = describer.usage["qwen-vl-plus"]
    assert (vision.input_tokens, vision.output_tokens) == (billed["qwen-vl-plus"]["input_tokens"],
                                                           billed["qwen-vl-plus"]["output_tokens"])
    text = info.usage["qwen-plus"]
    assert (text.input_tokens, text.output_tokens, text.calls) == (
        billed["qwen-plus"]["input_tokens"], billed["qwen-plus"]["output_tokens"], 2)
    print(f"\nbilled by the stand-in: {billed}; counted: vision {vision.input_tokens}/{vision.output_tokens}, "
          f"text {text.input_tokens}/{text.output_tokens}")


def test_realtime_audio_seconds_equal_the_billed_duration(ds, standin, tmp_path):
    recognizer = speech_recognizer(ds)
    recognizer.transcribe(_wav(tmp_path / "b.wav", 6.0), "en")
    assert recognizer.usage["paraformer-realtime-v2"].audio_seconds == standin.billed()[
        "paraformer-realtime-v2"]["duration"]


# ---------------------------------------------------------------------------- 7. clean up, CJK text

def test_uploaded_audio_is_deleted_after_the_file_transcription(ds, standin, s3_env, monkeypatch, tmp_path):
    from autoclip.analysis import audio_url_maker, transcribe

    fs, bucket = s3_env
    monkeypatch.setenv("AUTOCLIP_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("AUTOCLIP_OUTPUT_URI", f"s3://{bucket}/out")
    get_settings.cache_clear()
    settings = get_settings()
    upload = audio_url_maker(settings, "f" * 64)
    analysers, usage = {}, {}
    transcript = transcribe(_wav(tmp_path / "u.wav", 2.0), settings, Secrets.from_settings(settings),
                            analysers, usage, upload)
    assert transcript.sentences and analysers["speech"] == "dashscope:paraformer-v2"
    submitted = next(e for e in standin.log if e["kind"] == "asr-file")["body"]["input"]["file_urls"][0]
    assert f"/{bucket}/out/_audio/" in submitted or f"{bucket}" in submitted
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/out/_audio/{'f' * 64}.wav")
    assert usage["paraformer-v2"].audio_seconds == standin.billed()["paraformer-v2"]["duration"]


def test_paraformer_words_are_joined_without_spaces_in_chinese():
    raw = [{"begin_time": 0, "end_time": 2000, "text": "",
            "words": [{"begin_time": 0, "end_time": 500, "text": "欢迎", "punctuation": ""},
                      {"begin_time": 500, "end_time": 1000, "text": "来到", "punctuation": ""},
                      {"begin_time": 1000, "end_time": 1500, "text": "自动", "punctuation": ""},
                      {"begin_time": 1500, "end_time": 2000, "text": "剪辑", "punctuation": "。"}]}]
    sentences = sentences_from_paraformer(raw)
    assert [s.text for s in sentences] == ["欢迎来到自动剪辑。"]
