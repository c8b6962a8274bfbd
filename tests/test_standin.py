"""Self-tests of the DashScope stand-in, driven by the real ``dashscope`` SDK and ``openai`` client."""

from __future__ import annotations

import base64
import json
import math
import struct
import time
import urllib.request
import wave

import pytest

dashscope = pytest.importorskip("dashscope")
openai = pytest.importorskip("openai")
requests = pytest.importorskip("requests")

from dashscope import Generation, MultiModalConversation  # noqa: E402
from dashscope.audio.asr import Recognition, Transcription  # noqa: E402

from tests.dashscope_standin import StandIn, content, delay, status, task_failed  # noqa: E402

KEY = "sk-standin"
JPEG_URI = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(2000) + b"\xff\xd9").decode()


@pytest.fixture(scope="module")
def standin():
    saved = dashscope.base_http_api_url, dashscope.base_websocket_api_url
    with StandIn() as server:
        dashscope.base_http_api_url = server.http_base
        dashscope.base_websocket_api_url = server.ws_base
        try:
            yield server
        finally:
            dashscope.base_http_api_url, dashscope.base_websocket_api_url = saved


@pytest.fixture(autouse=True)
def clean(standin):
    standin.reset()
    yield


@pytest.fixture(scope="module")
def wav_7s(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    rate = 16000
    frames = b"".join(struct.pack("<h", int(6000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(rate * 7))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


def _ask(doc, **kwargs):
    return Generation.call(model="qwen-plus", api_key=KEY, result_format="message",
                           response_format={"type": "json_object"},
                           messages=[{"role": "system", "content": "Answer in JSON."},
                                     {"role": "user", "content": json.dumps(doc)}], **kwargs)


def _content(response):
    assert response.status_code == 200, response
    return response.output.choices[0].message.content


def _select_doc(title, budget, spans):
    return {"task": "select", "theme": {"title": title, "summary": "s"}, "budget_seconds": budget,
            "candidates": [{"id": i, "video_index": i % 2, "start": 0.0, "end": float(d), "score": 1.0}
                           for i, d in enumerate(spans)]}


# ------------------------------------------------------------------------------------- text LLM

def test_theme_in_json_mode(standin):
    response = _ask({"task": "theme", "videos": [{"name": "beach.mp4", "duration": 12.0}, {"name": "b.mp4"}]})
    theme = json.loads(_content(response))
    assert theme["title"] == "Stand-in theme: beach.mp4"
    assert "standin" in theme["keywords"] and theme["summary"]
    assert response.request_id
    usage = response.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage["total_tokens"] == usage.input_tokens + usage.output_tokens
    entry = standin.log[-1]
    assert entry["kind"] == "text" and entry["model"] == "qwen-plus" and entry["status"] == 200
    assert entry["auth"] == f"Bearer {KEY}"
    assert entry["body"]["parameters"]["response_format"] == {"type": "json_object"}


def test_select_takes_even_ids_within_budget(standin):
    # even ids 0, 2, 4, 6 last 4, 7, 3, 2 s; budget 10 -> 0 (4), skip 2 (11 > 10), 4 (7), 6 (9)
    response = _ask(_select_doc("Sunny day", 10, [4, 1, 7, 1, 3, 1, 2, 1]))
    picks = json.loads(_content(response))["picks"]
    assert [p["segment_id"] for p in picks] == [0, 4, 6]
    assert all("Sunny day" in p["reason"] for p in picks)
    assert standin.picks == [[0, 4, 6]]


def test_select_fallbacks(standin):
    none_fit = json.loads(_content(_ask(_select_doc("T", 1, [5, 1, 3, 1, 4]))))["picks"]
    assert [p["segment_id"] for p in none_fit] == [2]  # the shortest even candidate
    doc = _select_doc("T", 100, [5, 5])
    doc["candidates"] = [c for c in doc["candidates"] if c["id"] % 2 == 1]
    only_odd = json.loads(_content(_ask(doc)))["picks"]
    assert [p["segment_id"] for p in only_odd] == [1]  # no even id: the first candidate
    assert standin.picks == [[2], [1]]


def test_repair_reanswers_the_original_task(standin):
    original = _select_doc("Repaired", 100, [1, 1, 1])
    response = Generation.call(model="qwen-plus", api_key=KEY, result_format="message", messages=[
        {"role": "system", "content": "JSON only."},
        {"role": "user", "content": json.dumps(original)},
        {"role": "assistant", "content": "not json"},
        {"role": "user", "content": json.dumps({"task": "repair", "error": "invalid JSON"})}])
    picks = json.loads(_content(response))["picks"]
    assert [p["segment_id"] for p in picks] == [0, 2]
    assert "Repaired" in picks[0]["reason"]


def test_faults_are_consumed_in_order(standin):
    standin.script("text", status(429), content("this is {not json"))
    throttled = _ask({"task": "theme", "videos": ["a.mp4"]})
    assert throttled.status_code == 429 and throttled.code == "Throttling" and throttled.output is None
    assert _content(_ask({"task": "theme", "videos": ["a.mp4"]})) == "this is {not json"
    assert json.loads(_content(_ask({"task": "theme", "videos": ["a.mp4"]})))["title"] == "Stand-in theme: a.mp4"
    assert [e["status"] for e in standin.log] == [429, 200, 200]
    assert standin.kinds() == ["text", "text", "text"]


def test_server_error_and_wrong_key(standin):
    standin.script("text", status(500))
    failed = _ask({"task": "theme", "videos": ["a.mp4"]})
    assert failed.status_code == 500 and failed.code == "InternalError" and failed.request_id
    wrong = Generation.call(model="qwen-plus", api_key="sk-wrong", result_format="message",
                            messages=[{"role": "user", "content": "{}"}])
    assert wrong.status_code == 401 and wrong.code == "InvalidApiKey"
    assert standin.log[-1]["auth"] == "Bearer sk-wrong"


def test_delay_trips_the_request_timeout_without_sdk_retry(standin):
    standin.script("text", delay(2))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        _ask({"task": "theme", "videos": ["a.mp4"]}, request_timeout=1)
    assert time.monotonic() - started < 1.9
    deadline = time.monotonic() + 3
    while standin.log[-1]["status"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert standin.kinds() == ["text"]  # the SDK did not retry the timed-out call
    assert standin.log[-1]["status"] == 499  # the client had hung up when the delayed answer was due


def test_script_rejects_faults_that_do_not_apply(standin):
    with pytest.raises(ValueError):
        standin.script("chat", task_failed("x"))
    with pytest.raises(ValueError):
        standin.script("asr-ws", content("x"))
    with pytest.raises(ValueError):
        standin.script("nonsense", status(500))


# ----------------------------------------------------------------------------------- vision LLM

def test_vision_describe_with_two_inline_images(standin):
    doc = {"task": "describe", "shots": [{"shot": 3, "start": 0.0, "end": 2.0}, {"shot": 4}]}
    response = MultiModalConversation.call(model="qwen-vl-plus", api_key=KEY, messages=[
        {"role": "user", "content": [{"image": JPEG_URI}, {"image": JPEG_URI}, {"text": json.dumps(doc)}]}])
    assert response.status_code == 200, response
    parts = response.output.choices[0].message.content
    assert isinstance(parts, list)
    shots = json.loads(parts[0]["text"])["shots"]
    assert shots[0] == {"shot": 3, "caption": "stand-in caption for shot 3 (2 frames)", "tags": ["standin"]}
    assert shots[1]["shot"] == 4
    assert response.usage["image_tokens"] > 0 and response.usage.input_tokens > response.usage["image_tokens"]
    assert standin.kinds() == ["vision"]  # data: URIs go inline, no upload
    assert standin.log[-1]["body"]["input"]["messages"][0]["content"][0]["image"] == JPEG_URI


def test_vision_local_file_goes_through_upload(standin, tmp_path):
    frame = tmp_path / "frame.jpg"
    frame.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    doc = {"task": "describe", "shots": [{"shot": 1}]}
    response = MultiModalConversation.call(model="qwen-vl-plus", api_key=KEY, messages=[
        {"role": "user", "content": [{"image": f"file://{frame}"}, {"text": json.dumps(doc)}]}])
    assert "(1 frames)" in json.loads(response.output.choices[0].message.content[0]["text"])["shots"][0]["caption"]
    assert standin.kinds() == ["upload", "upload", "vision"]
    assert standin.log[1]["body"]["size"] == frame.stat().st_size
    assert standin.log[2]["body"]["input"]["messages"][0]["content"][0]["image"].startswith("oss://")


# --------------------------------------------------------------------------- file transcription

def test_transcription_submit_wait_download(standin):
    submitted = Transcription.async_call(model="paraformer-v2", file_urls=["https://example.invalid/a.wav"],
                                         api_key=KEY, language_hints=["en"])
    assert submitted.status_code == 200 and submitted.output.task_status == "PENDING"
    done = Transcription.wait(submitted, api_key=KEY)
    assert done.status_code == 200 and done.output.task_status == "SUCCEEDED"
    result = done.output["results"][0]
    assert result["subtask_status"] == "SUCCEEDED"
    url = result["transcription_url"]
    assert url == f"http://127.0.0.1:{standin.port}/files/{submitted.output.task_id}.json"
    with urllib.request.urlopen(url, timeout=5) as r:
        doc = json.load(r)
    sentences = doc["transcripts"][0]["sentences"]
    assert [s["text"] for s in sentences] == ["stand-in sentence one.", "stand-in sentence two.",
                                              "stand-in sentence three."]
    assert sentences[0]["begin_time"] == 0 and sentences[-1]["end_time"] == 9000
    assert all(w["begin_time"] < w["end_time"] for s in sentences for w in s["words"])
    assert standin.kinds() == ["asr-file"]
    assert [e["kind"] for e in standin.log] == ["asr-file", "asr-poll", "asr-poll", "asr-download"]
    assert standin.log[0]["body"]["parameters"]["language_hints"] == ["en"]
    assert standin.log[0]["body"]["input"]["file_urls"] == ["https://example.invalid/a.wav"]


def test_transcription_task_failed(standin):
    standin.script("asr-file", task_failed("File download failed"))
    submitted = Transcription.async_call(model="paraformer-v2", file_urls=["https://example.invalid/b.wav"],
                                         api_key=KEY)
    done = Transcription.wait(submitted, api_key=KEY)
    # FAILED is still an HTTP 200 for the SDK: the failure lives in output, not in status_code/code
    assert done.status_code == 200 and done.output.task_status == "FAILED"
    assert done.output["message"] == "File download failed"
    assert done.output["results"][0]["subtask_status"] == "FAILED"


# ------------------------------------------------------------------------- realtime recognition

def test_recognition_of_a_wav_file(standin, wav_7s):
    recognition = Recognition(model="paraformer-realtime-v2", callback=None, format="wav", sample_rate=16000,
                              api_key=KEY)
    result = recognition.call(str(wav_7s))
    assert result.status_code == 200, result.message
    sentences = result.get_sentence()
    assert [s["text"] for s in sentences] == ["stand-in speech 1", "stand-in speech 2", "stand-in speech 3"]
    assert [(s["begin_time"], s["end_time"]) for s in sentences] == [(0, 3000), (3000, 6000), (6000, 7000)]
    assert all(s["sentence_end"] and 2 <= len(s["words"]) <= 3 for s in sentences)
    entry = standin.log[-1]
    assert entry["kind"] == "asr-ws" and entry["status"] == 200 and entry["model"] == "paraformer-realtime-v2"
    assert entry["body"]["header"]["action"] == "run-task"
    assert entry["body"]["payload"]["parameters"]["sample_rate"] == 16000
    assert entry["body"]["audio_bytes"] == wav_7s.stat().st_size


def test_recognition_task_failed_and_wrong_key(standin, wav_7s):
    standin.script("asr-ws", task_failed("audio format unsupported"))
    failed = Recognition(model="paraformer-realtime-v2", callback=None, format="wav", sample_rate=16000,
                         api_key=KEY).call(str(wav_7s))
    assert failed.status_code == 44 and failed.code == "TaskFailed"
    assert failed.message == "audio format unsupported" and failed.get_sentence() is None
    refused = Recognition(model="paraformer-realtime-v2", callback=None, format="wav", sample_rate=16000,
                          api_key="sk-wrong").call(str(wav_7s))
    assert refused.status_code == 401
    assert [e["status"] for e in standin.log] == [44, 401]


# ------------------------------------------------------------------------ OpenAI-compatible mode

def test_openai_compatible_chat(standin):
    client = openai.OpenAI(base_url=standin.compatible_base, api_key=KEY, max_retries=0)
    doc = _select_doc("Compat theme", 5, [2, 9, 2, 9, 2])
    reply = client.chat.completions.create(model="qwen-plus", response_format={"type": "json_object"},
                                           messages=[{"role": "user", "content": json.dumps(doc)}])
    picks = json.loads(reply.choices[0].message.content)["picks"]
    assert [p["segment_id"] for p in picks] == [0, 2]
    assert "Compat theme" in picks[0]["reason"]
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    vision = client.chat.completions.create(model="qwen-vl-plus", messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": JPEG_URI}},
        {"type": "image_url", "image_url": {"url": JPEG_URI}},
        {"type": "text", "text": json.dumps({"task": "describe", "shots": [{"shot": 1}]})}]}])
    assert "(2 frames)" in vision.choices[0].message.content
    standin.script("chat", status(429))
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="qwen-plus", messages=[{"role": "user", "content": json.dumps(doc)}])
    assert raised.value.status_code == 429
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=standin.compatible_base, api_key="sk-wrong", max_retries=0).chat.completions.create(
            model="qwen-plus", messages=[{"role": "user", "content": "hi"}])
    assert standin.kinds() == ["chat"] * 4
    assert standin.picks == [[0, 2]]
