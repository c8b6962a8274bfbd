"""DashScope through the official SDK: qwen text models (pass 1 and 2), qwen-vl-plus (shots), and
Paraformer speech, by file transcription when the audio has a URL the service can reach, else by
realtime recognition over the websocket streaming the local 16 kHz WAV.

Every call has a timeout, goes through the one RetryPolicy (429, 5xx, connection errors and timeouts are
retried; 400/401/403 are not), and never puts the API key in a message, log or exception.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import time
import urllib.request
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pydantic import SecretStr

from autoclip.errors import ProviderAuthError, ProviderError, TransientError
from autoclip.models import Sentence, Transcript, Usage, Word
from autoclip.retry import RetryPolicy

log = logging.getLogger("autoclip.providers.dashscope")
_AUTH_STATUSES = {400, 401, 403, 404}


@dataclass
class DashScopeSession:
    """Key, addresses, timeout and retry policy shared by every DashScope call of a run."""

    api_key: SecretStr
    http_url: str
    websocket_url: str
    timeout: float
    retry: RetryPolicy
    throttle: Callable[[], None] | None = None  # waits for the account-wide rate limit before each request

    def __post_init__(self):
        import dashscope  # imported here: ~1 s, and only runs that use DashScope pay it

        # The SDK reads its addresses from module globals; every call of ours uses the same ones.
        dashscope.base_http_api_url = self.http_url.rstrip("/")
        dashscope.base_websocket_api_url = self.websocket_url.rstrip("/")

    @property
    def key(self) -> str:
        return self.api_key.get_secret_value()

    def redact(self, text: str) -> str:
        key = self.key
        return text.replace(key, "***") if key else text

    def check(self, what: str, response) -> None:
        """Raise the right error for a non-200 SDK response."""
        status = int(getattr(response, "status_code", 0) or 0)
        if status == 200:
            return
        detail = self.redact(f"{status} {getattr(response, 'code', '') or ''}: "
                             f"{getattr(response, 'message', '') or ''}".strip())
        if status == 429 or status >= 500 or status <= 0:  # <= 0: the SDK could not connect
            raise TransientError(f"{what}: {detail}")
        if status in _AUTH_STATUSES:
            raise ProviderAuthError(f"{what}: DashScope refused the request ({detail})")
        raise ProviderError(f"{what}: {detail}")

    def transport(self, what: str, exc: Exception) -> Exception:
        """Map an exception from the SDK's transport to TransientError (network) or ProviderError."""
        if isinstance(exc, (TransientError, ProviderError)):
            return exc
        names = " ".join(t.__name__.lower() for t in type(exc).__mro__)
        text = self.redact(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, (TimeoutError, ConnectionError, OSError)) or any(
                word in names for word in ("timeout", "connection", "clienterror", "requestexception")):
            return TransientError(f"{what}: {text}")
        return ProviderError(f"{what}: {text}")

    def call(self, what: str, fn: Callable):
        """Run one SDK call under the retry policy, with transport errors classified."""
        def once():
            if self.throttle:
                self.throttle()
            try:
                return fn()
            except Exception as exc:  # the SDK raises many transport types; classify them all
                raise self.transport(what, exc) from exc
        return self.retry.call(what, once)


def _usage(raw, audio_seconds: float = 0.0) -> Usage:
    raw = raw or {}
    get = raw.get if isinstance(raw, dict) else (lambda k, d=None: getattr(raw, k, d))
    return Usage(input_tokens=int(get("input_tokens", 0) or 0) + int(get("image_tokens", 0) or 0),
                 output_tokens=int(get("output_tokens", 0) or 0), audio_seconds=audio_seconds)


class DashScopeChat:
    """ChatBackend for DashScope text models (Generation) and vision models (MultiModalConversation)."""

    provider = "dashscope"

    def __init__(self, session: DashScopeSession, model: str, multimodal: bool = False):
        self.session = session
        self.model = model
        self.multimodal = multimodal

    def complete(self, messages: list[dict], *, json_mode: bool = True) -> tuple[str, Usage]:
        what = f"DashScope {self.model}"

        def send():
            if self.multimodal:
                from dashscope import MultiModalConversation

                wire = [{"role": m["role"], "content": m["content"] if isinstance(m["content"], list)
                         else [{"text": m["content"]}]} for m in messages]
                response = MultiModalConversation.call(model=self.model, messages=wire, api_key=self.session.key,
                                                       request_timeout=self.session.timeout)
            else:
                from dashscope import Generation

                extra = {"response_format": {"type": "json_object"}} if json_mode else {}
                response = Generation.call(model=self.model, messages=messages, result_format="message",
                                           api_key=self.session.key, request_timeout=self.session.timeout,
                                           **extra)
            self.session.check(what, response)
            return response

        response = self.session.call(what, send)
        try:
            content = response.output["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderError(f"{what}: reply has no message content") from exc
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content), _usage(response.usage)


def _seconds(ms) -> float:
    return round(float(ms or 0) / 1000.0, 3)


def sentences_from_paraformer(raw: list[dict]) -> list[Sentence]:
    """Paraformer sentences (milliseconds, words with punctuation) -> our Sentence/Word in seconds."""
    out = []
    for item in raw:
        text = (item.get("text") or "").strip()
        if not text:
            continue
        words = [Word(start=_seconds(w.get("begin_time")), end=_seconds(w.get("end_time")),
                      text=f"{w.get('text', '')}{w.get('punctuation', '') or ''}".strip())
                 for w in item.get("words") or [] if (w.get("text") or "").strip()]
        out.append(Sentence(start=_seconds(item.get("begin_time")), end=_seconds(item.get("end_time")),
                            text=text, words=words))
    return out


class ParaformerRecognizer:
    """SpeechRecognizer on Paraformer. `audio_url` turns a local WAV into a URL the service can fetch
    (a presigned object-storage URL); without one the WAV is streamed over the websocket."""

    def __init__(self, session: DashScopeSession, realtime_model: str, file_model: str,
                 language_hints: list[str] | None = None,
                 audio_url: Callable[[Path], str | None] | None = None):
        self.session = session
        self.realtime_model = realtime_model
        self.file_model = file_model
        self.language_hints = language_hints or []
        self.audio_url = audio_url
        self.name = f"dashscope:{realtime_model}"
        self.usage: dict[str, Usage] = {}

    def transcribe(self, wav: Path, language: str | None = None) -> Transcript:
        hints = [h.strip() for h in (language or "").split(",") if h.strip()] or self.language_hints
        with wave.open(str(wav)) as handle:
            seconds = handle.getnframes() / float(handle.getframerate())
        url = self.audio_url(wav) if self.audio_url else None
        if url:
            self.name = f"dashscope:{self.file_model}"
            sentences = self._by_file(url, hints, seconds)
            model = self.file_model
        else:
            sentences = self._realtime(wav, hints, seconds)
            model = self.realtime_model
        self.usage[model] = self.usage.get(model, Usage()) + Usage(audio_seconds=round(seconds, 3), calls=1)
        return Transcript(engine=self.name, language=",".join(hints) or None, sentences=sentences)

    def _realtime(self, wav: Path, hints: list[str], seconds: float) -> list[Sentence]:
        from dashscope.audio.asr import Recognition, RecognitionCallback

        what = f"DashScope {self.realtime_model}"
        limit = self.session.timeout + seconds * 1.5

        def stream():
            extra = {"language_hints": hints} if hints else {}
            recognizer = Recognition(model=self.realtime_model, callback=RecognitionCallback(), format="wav",
                                     sample_rate=16000, api_key=self.session.key, **extra)
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            try:
                result = pool.submit(recognizer.call, str(wav)).result(timeout=limit)
            except concurrent.futures.TimeoutError:
                raise TransientError(f"{what}: no result within {limit:.0f} s") from None
            finally:
                pool.shutdown(wait=False)
            self.session.check(what, result)
            return result

        result = self.session.call(what, stream)
        return sentences_from_paraformer(result.get_sentence() or [])

    def _by_file(self, url: str, hints: list[str], seconds: float) -> list[Sentence]:
        from dashscope.audio.asr import Transcription

        what = f"DashScope {self.file_model}"
        extra = {"language_hints": hints} if hints else {}

        def submit():
            response = Transcription.async_call(model=self.file_model, file_urls=[url], api_key=self.session.key,
                                                request_timeout=self.session.timeout, **extra)
            self.session.check(what, response)
            return response

        task_id = self.session.call(what, submit).output["task_id"]
        deadline = time.monotonic() + max(300.0, seconds * 3)
        pause = 1.0
        while True:
            status = self.session.call(what, lambda: self._fetch(task_id, what))
            state = status.output.get("task_status")
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELED", "UNKNOWN"):
                message = status.output.get("message") or status.output.get("code") or state
                raise ProviderError(f"{what}: transcription task {task_id} ended {state}: {self.session.redact(str(message))}")
            if time.monotonic() > deadline:
                raise ProviderError(f"{what}: transcription task {task_id} still {state} after the deadline")
            time.sleep(pause)
            pause = min(5.0, pause * 1.5)
        sentences: list[Sentence] = []
        for result in status.output.get("results") or []:
            if result.get("subtask_status", "SUCCEEDED") != "SUCCEEDED":
                raise ProviderError(f"{what}: {result.get('file_url')}: {result.get('subtask_status')} "
                                    f"{result.get('message', '')}".strip())
            body = self.session.call(what, lambda: self._download(result["transcription_url"]))
            for transcript in body.get("transcripts") or []:
                sentences += sentences_from_paraformer(transcript.get("sentences") or [])
        return sentences

    def _fetch(self, task_id: str, what: str):
        from dashscope.audio.asr import Transcription

        response = Transcription.fetch(task=task_id, api_key=self.session.key,
                                       request_timeout=self.session.timeout)
        self.session.check(what, response)
        return response

    def _download(self, url: str) -> dict:
        with urllib.request.urlopen(url, timeout=self.session.timeout) as reply:  # noqa: S310 (service URL)
            return json.loads(reply.read().decode("utf-8"))
