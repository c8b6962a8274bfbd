"""DashScope and OpenAI-compatible providers, driven through the real SDKs against the local stand-in
that speaks DashScope's wire protocol (tests/dashscope_standin.py)."""

from __future__ import annotations

import json
import math
import struct
import wave
from pathlib import Path

import pytest

from autoclip.config import get_settings
from autoclip.errors import ProviderAuthError, ProviderError
from autoclip.models import (Candidate, Interval, PlannerInfo, SelectionRequest, SourceVideo, Theme,
                             VideoAnalysis, VideoDigest)
from autoclip.planning.two_pass import plan_edit
from autoclip.planning.llm import language_model
from autoclip.providers import Secrets, speech_recognizer, vision_describer

from tests.dashscope_standin import STANDIN_KEY, standin_settings, content, delay, status, task_failed

KEY = STANDIN_KEY


@pytest.fixture
def ds(standin, monkeypatch, tmp_path):
    """Settings that send every stage to the stand-in, with a fresh response cache."""
    return standin_settings(standin, monkeypatch, tmp_path, AUTOCLIP_OPENAI_BASE_URL=standin.compatible_base)


def _digests():
    return [VideoDigest(video_index=0, name="talk.mp4", duration=30, shots=3, speech_ratio=0.8,
                        transcript_excerpt="we built a boat"),
            VideoDigest(video_index=1, name="sea.mp4", duration=20, shots=5, speech_ratio=0.0)]


def _request(n: int = 10, videos: int = 2, theme: str = "Boats") -> SelectionRequest:
    cands = [Candidate(id=i + 1, video_index=i % videos, start=3.0 * (i // videos), end=3.0 * (i // videos) + 2.5,
                       text=f"sentence {i + 1}") for i in range(n)]
    return SelectionRequest(theme=Theme(title=theme, summary="s"), candidates=cands, videos=_digests()[:videos],
                            target_duration=8)


def test_two_passes_through_the_sdk(ds, standin):
    model = language_model(ds)
    theme, usage = model.theme(_digests())
    assert theme.title == "Stand-in theme: talk.mp4"
    selection, usage2 = model.select(_request(theme=theme.title))
    assert [p.segment_id for p in selection.picks] == standin.picks[-1]
    assert all(theme.title in p.reason for p in selection.picks)  # pass 2 saw pass 1's theme
    assert standin.kinds() == ["text", "text"]
    assert all(e["auth"] == f"Bearer {KEY}" for e in standin.log)
    body = standin.log[0]["body"]
    assert body["model"] == "qwen-plus" and body["parameters"]["response_format"] == {"type": "json_object"}
    assert usage["qwen-plus"].input_tokens > 0 and usage2["qwen-plus"].calls == 1


def test_throttling_twice_then_success(ds, standin):
    standin.script("text", status(429), status(429))
    theme, usage = language_model(ds).theme(_digests())
    assert theme.title.startswith("Stand-in theme")
    assert [e["status"] for e in standin.log] == [429, 429, 200]


def test_server_error_is_retried_then_falls_back_loudly(ds, standin):
    standin.script("text", *[status(500)] * 4)
    theme, info = _plan_with(language_model(ds))
    assert [e["status"] for e in standin.log[:4]] == [500] * 4
    assert info.notes and "pass 1 fell back to the heuristic planner" in info.notes[0]
    assert "gave up after 4 tries" in info.notes[0] and "500" in info.notes[0]


def _plan_with(model):
    from autoclip.planning.two_pass import decide_theme

    return decide_theme(model, _digests())


def test_timeout_is_retried(ds, standin):
    standin.script("text", delay(3.5))
    theme, usage = language_model(ds).theme(_digests())
    assert theme.title.startswith("Stand-in theme")
    assert len([e for e in standin.log if e["kind"] == "text"]) == 2


def test_bad_key_fails_at_once_with_a_clear_message(ds, standin, monkeypatch, caplog):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-wrong-key-123")
    get_settings.cache_clear()
    with pytest.raises(ProviderAuthError) as caught:
        _plan_with(language_model(get_settings()))
    assert "401" in str(caught.value) and "refused" in str(caught.value)
    assert "sk-wrong-key-123" not in str(caught.value) and "sk-wrong-key-123" not in caplog.text
    assert len(standin.log) == 1  # no retry


def test_invalid_json_then_a_valid_repair(ds, standin):
    standin.script("text", content("Sure! Here is the theme: boats"))
    theme, _ = language_model(ds).theme(_digests())
    assert theme.title.startswith("Stand-in theme")
    repair = standin.log[1]["body"]["input"]["messages"]
    assert [m["role"] for m in repair] == ["system", "user", "assistant", "user"]
    assert json.loads(repair[-1]["content"])["task"] == "repair"
    assert "not the JSON object asked for" in repair[-1]["content"]


def test_unknown_ids_are_repaired(ds, standin):
    standin.script("text", content('{"picks": [{"segment_id": 999, "reason": "x"}]}'))
    selection, _ = language_model(ds).select(_request())
    assert [p.segment_id for p in selection.picks] == standin.picks[-1]
    assert "unknown segment ids [999]" in standin.log[1]["body"]["input"]["messages"][-1]["content"]


def test_empty_selection_twice_falls_back_to_the_heuristic(ds, standin):
    standin.script("text", content('{"picks": []}'), content('{"picks": []}'))
    video = SourceVideo.model_validate({
        "index": 0, "source": "v.mp4", "name": "v.mp4", "path": "/x/v.mp4", "sha256": "0" * 64, "size_bytes": 1,
        "info": {"duration": 30, "format_name": "mp4", "width": 640, "height": 360, "display_width": 640,
                 "display_height": 360, "fps": 25, "video_codec": "h264", "has_audio": True}})
    speech = [Interval(start=s, end=s + 2.5) for s in range(0, 27, 3)]
    analysis = VideoAnalysis(sha256="0" * 64, duration=30, speech=speech, loudness_db=[-20.0] * 120)
    plan = plan_edit([(video, analysis)], Theme(title="t", summary="s"),
                     PlannerInfo(provider="dashscope", model="qwen-plus"), language_model(ds), target=8,
                     min_clip=1.5, max_clip=8)
    assert plan.planner.heuristic and plan.clips
    assert "pass 2 fell back to the heuristic planner" in plan.planner.notes[0]
    assert "empty" in plan.planner.notes[0]


def test_long_candidate_lists_are_planned_in_windows(ds, standin, monkeypatch):
    monkeypatch.setenv("AUTOCLIP_SELECTION_TOKEN_BUDGET", "800")
    get_settings.cache_clear()
    request = _request(n=60, videos=2)
    selection, _ = language_model(get_settings()).select(request)
    calls = [e for e in standin.log if e["kind"] == "text"]
    assert len(calls) >= 3  # windows per video, then the final pass
    windows = [json.loads(c["body"]["input"]["messages"][-1]["content"]) for c in calls[:-1]]
    assert {c["video_index"] for w in windows for c in w["candidates"]} == {0, 1}
    assert all(len({c["video_index"] for c in w["candidates"]}) == 1 for w in windows)
    assert [p.segment_id for p in selection.picks] == standin.picks[-1]


def test_responses_are_cached_so_a_rerun_sends_nothing(ds, standin):
    first, _ = language_model(ds).theme(_digests())
    second, usage = language_model(ds).theme(_digests())
    assert first == second and len(standin.log) == 1
    assert usage["qwen-plus"].cached_calls == 1 and usage["qwen-plus"].input_tokens == 0


def _wav(path: Path, seconds: float = 7.0) -> Path:
    with wave.open(str(path), "w") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000)))
                                 for i in range(int(16000 * seconds))))
    return path


def test_realtime_paraformer_streams_the_local_wav(ds, standin, tmp_path):
    recognizer = speech_recognizer(ds)
    transcript = recognizer.transcribe(_wav(tmp_path / "a.wav"), "en")
    assert transcript.sentences and transcript.sentences[0].words
    assert all(0 <= s.start < s.end <= 7.05 for s in transcript.sentences)
    entry = standin.log[0]
    assert entry["kind"] == "asr-ws" and entry["body"]["audio_bytes"] >= 16000 * 2 * 7
    assert entry["body"]["payload"]["model"] == "paraformer-realtime-v2"
    assert entry["body"]["payload"]["parameters"]["language_hints"] == ["en"]
    assert KEY not in json.dumps(entry["body"])
    assert recognizer.usage["paraformer-realtime-v2"].audio_seconds == pytest.approx(7.0, abs=0.01)


def test_file_transcription_when_the_audio_has_a_url(ds, standin, tmp_path):
    recognizer = speech_recognizer(ds, audio_url=lambda wav: "https://bucket.example/audio.wav?signature=x")
    transcript = recognizer.transcribe(_wav(tmp_path / "b.wav", 3.0))
    assert [s.text for s in transcript.sentences][0].startswith("stand-in sentence")
    assert transcript.sentences[0].words[0].end > transcript.sentences[0].words[0].start
    submit = next(e for e in standin.log if e["kind"] == "asr-file")
    assert submit["body"]["input"]["file_urls"] == ["https://bucket.example/audio.wav?signature=x"]
    assert submit["body"]["model"] == "paraformer-v2"


def test_failed_transcription_task_is_an_error(ds, standin, tmp_path):
    standin.script("asr-file", task_failed("audio decode error"))
    recognizer = speech_recognizer(ds, audio_url=lambda wav: "https://bucket.example/a.wav")
    with pytest.raises(ProviderError, match="FAILED.*audio decode error"):
        recognizer.transcribe(_wav(tmp_path / "c.wav", 2.0))


def test_websocket_task_failed_falls_back_to_local_speech(ds, standin, tmp_path, monkeypatch):
    from autoclip.analysis import transcribe

    monkeypatch.setenv("AUTOCLIP_WHISPER_MODEL", "none")
    get_settings.cache_clear()
    standin.script("asr-ws", task_failed("model overloaded"))
    analysers, usage = {}, {}
    result = transcribe(_wav(tmp_path / "d.wav", 2.0), get_settings(),
                        Secrets.from_settings(get_settings()), analysers, usage)
    assert result is None
    assert "failed" in analysers["speech"] and "model overloaded" in analysers["speech"]
    assert analysers["speech"].endswith("energy (no speech model)")


def test_vision_captions_shots_from_inline_frames(ds, standin, media, tmp_path):
    from autoclip.media import extract as ex
    from autoclip.media.probe import probe
    from autoclip.analysis import shots_with_frames

    result = ex.extract(media.two_shots, probe(media.two_shots), tmp_path / "w", frame_interval=1.0,
                        scene_threshold=0.3)
    describer = vision_describer(ds)
    captions = describer.describe(shots_with_frames(result.shot_cuts, result.duration, result.frames))
    assert [(c.start, c.end) for c in captions] == [(0.0, result.shot_cuts[0]), (result.shot_cuts[0], result.duration)]
    assert all(c.caption.startswith("stand-in caption") for c in captions)
    call = standin.log[0]
    assert call["kind"] == "vision" and call["body"]["model"] == "qwen-vl-plus"
    images = [p for p in call["body"]["input"]["messages"][0]["content"] if "image" in p]
    assert images and all(p["image"].startswith("data:image/jpeg;base64,") for p in images)
    assert describer.usage["qwen-vl-plus"].input_tokens > 0


def test_openai_compatible_provider_against_the_same_standin(ds, standin, monkeypatch):
    monkeypatch.setenv("AUTOCLIP_PROVIDER", "openai")
    monkeypatch.setenv("AUTOCLIP_OPENAI_API_KEY", KEY)
    get_settings.cache_clear()
    model = language_model(get_settings())
    assert model.provider == "openai"
    theme, _ = model.theme(_digests())
    selection, usage = model.select(_request(theme=theme.title))
    assert [p.segment_id for p in selection.picks] == standin.picks[-1]
    assert standin.kinds() == ["chat", "chat"]
    assert usage["qwen-plus"].input_tokens > 0


def test_secrets_never_show_in_repr():
    from pydantic import SecretStr

    assert "sk-" not in repr(Secrets(SecretStr("sk-abc"), None))
    assert "sk-abc" not in repr(get_settings().model_copy(update={"dashscope_api_key": SecretStr("sk-abc")}))


@pytest.mark.slow
def test_cli_run_with_dashscope_records_both_passes_and_reruns_from_cache(ds, standin, prefect_server,
                                                                         sample_speech, media, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "reel.mp4"
    cmd = [sys.executable, "-m", "autoclip.cli", "run", str(sample_speech), str(media.two_shots),
           "--duration", "15", "-o", str(out), "--width", "320", "--height", "180"]
    env = dict(os.environ)
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-3000:]

    kinds = standin.kinds()
    assert kinds.count("asr-ws") == 2 and kinds.count("text") == 2 and "vision" in kinds
    last_analysis = max(i for i, k in enumerate(kinds) if k in ("asr-ws", "vision"))
    assert kinds.index("text") > last_analysis  # ASR and vision, then pass 1, then pass 2
    for video in range(2):  # per video, speech comes before vision
        assert [k for k in kinds if k in ("asr-ws", "vision")][0] == "asr-ws"
    theme_request, select_request = [e for e in standin.log if e["kind"] == "text"]
    assert json.loads(theme_request["body"]["input"]["messages"][-1]["content"])["task"] == "theme"
    select_doc = json.loads(select_request["body"]["input"]["messages"][-1]["content"])
    assert select_doc["task"] == "select" and select_doc["theme"]["title"].startswith("Stand-in theme")
    assert any(c.get("caption", "").startswith("stand-in caption") for c in select_doc["candidates"])

    plan = json.loads(out.with_suffix(".plan.json").read_text())
    assert plan["theme"]["title"] == select_doc["theme"]["title"]
    assert [i for c in plan["clips"] for i in c["segment_ids"]] == standin.picks[-1]
    assert all("stand-in pick" in c["reason"] for c in plan["clips"])
    assert (plan["planner"]["provider"], plan["planner"]["model"], plan["planner"]["heuristic"]) == (
        "dashscope", "qwen-plus", False)
    assert plan["usage"]["qwen-plus"]["input_tokens"] > 0 and plan["usage"]["qwen-vl-plus"]["calls"] >= 1
    assert plan["usage"]["paraformer-realtime-v2"]["audio_seconds"] > 40
    assert plan["estimated_cost"] > 0
    assert KEY not in first.stdout + first.stderr

    def paid():  # every request but the free key check each run starts with
        return [e for e in standin.log if e["kind"] != "asr-poll"]

    requests_before = len(paid())
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(paid()) == requests_before  # analyses cached by Prefect, both passes by the response cache
    assert "analysis:  2 cached, 0 computed" in second.stdout
    rerun = json.loads(out.with_suffix(".plan.json").read_text())
    assert rerun["estimated_cost"] == 0 and all(u["input_tokens"] == 0 and u["audio_seconds"] == 0
                                                 for u in rerun["usage"].values())
    assert rerun["usage"]["qwen-plus"]["cached_calls"] == 2
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=5)
        logs = client.read_logs(limit=200)
    assert logs and all(KEY not in log.message for log in logs)  # not in any log the server holds
    assert runs and all(KEY not in json.dumps(run.parameters, default=str) for run in runs)
