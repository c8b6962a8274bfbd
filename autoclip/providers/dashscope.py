"""DashScope through the official SDK: qwen text models (pass 1 and 2), qwen-vl-plus (shots), and
Paraformer speech, by file transcription when the audio has a URL the service can reach, else by
realtime recognition over the websocket streaming the local 16 kHz WAV.

Every call has an enforced timeout (cut to the run's provider budget and deadline) and goes through the
one RetryPolicy: 429, 5xx, connection errors and timeouts are retried (Retry-After honoured); a refused
key (401/403, also as a websocket `task-failed`) stops the run; a refused item (400, e.g.
DataInspectionFailed) fails only that item. The SDK's own retry of dropped connections is switched off
by handing it a session whose connection errors are ours, and its error log (a traceback per fault) is
kept quiet unless DASHSCOPE_LOGGING_LEVEL asks for it. The API key never goes into a message or log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pydantic import SecretStr

from autoclip.errors import ProviderAuthError, ProviderError, TransientError
from autoclip.models import Sentence, Transcript, Usage, Word
from autoclip.providers.chat import ContentRefused
from autoclip.retry import ProviderBudget, RetryAfter, RetryPolicy, parse_retry_after
from autoclip.text import join_words

log = logging.getLogger("autoclip.providers.dashscope")
_AUTH_STATUSES = {401, 403}
_AUTH_CODES = {"invalidapikey", "unauthorized", "accessdenied", "invalidapi-key", "401", "403"}


def auth_message(detail: str) -> str:
    return f"DashScope refused the key ({detail}): check DASHSCOPE_API_KEY"


def _quiet_sdk_log() -> None:
    """The SDK logs a traceback for every transport fault it re-raises; we log one line per fault
    ourselves, so its logger stays silent unless DASHSCOPE_LOGGING_LEVEL asks for it."""
    if os.environ.get("DASHSCOPE_LOGGING_LEVEL"):
        return
    sdk = logging.getLogger("dashscope")
    if not any(isinstance(h, logging.NullHandler) for h in sdk.handlers):
        sdk.addHandler(logging.NullHandler())
    sdk.propagate = False


class ConnectionLost(TransientError):
    """A dropped or refused connection, raised in place of requests' ConnectionError so the SDK's own
    retry-once (which catches only that type) never runs inside our retries."""


def _http_session():
    import requests
    from requests.adapters import HTTPAdapter

    class OneTryAdapter(HTTPAdapter):
        def send(self, request, **kwargs):
            try:
                return super().send(request, **kwargs)
            except requests.exceptions.ConnectTimeout as exc:
                raise TransientError(f"connect timeout: {exc}") from None
            except requests.exceptions.ConnectionError as exc:
                raise ConnectionLost(f"connection lost: {type(exc).__name__}: {_short(exc)}") from None

    session = requests.Session()
    adapter = OneTryAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


@dataclass
class DashScopeSession:
    """Key, addresses, timeout, retry policy and wait budget shared by every DashScope call of a run."""

    api_key: SecretStr
    http_url: str
    websocket_url: str
    timeout: float
    retry: RetryPolicy
    throttle: Callable[[], None] | None = None  # waits for the account-wide rate limit before each request
    budget: ProviderBudget = field(default_factory=lambda: ProviderBudget(None))

    def __post_init__(self):
        import dashscope  # imported here: ~1 s, and only runs that use DashScope pay it

        # The SDK reads its addresses from module globals; every call of ours uses the same ones.
        dashscope.base_http_api_url = self.http_url.rstrip("/")
        dashscope.base_websocket_api_url = self.websocket_url.rstrip("/")
        _quiet_sdk_log()
        self.http = _http_session()

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
        code = str(getattr(response, "code", "") or "")
        message = str(getattr(response, "message", "") or "")
        self.fail(what, status, code, message, (getattr(response, "headers", None) or {}).get("Retry-After"))

    def fail(self, what: str, status: int, code: str, message: str, retry_after=None):
        detail = self.redact(f"{status} {code}: {message}".strip())
        if status in _AUTH_STATUSES or _is_auth_code(code, message):
            raise ProviderAuthError(auth_message(f"{what}: {detail}"))
        if status == 429 or status >= 500 or status <= 0:  # <= 0: the SDK could not connect
            raise RetryAfter(f"{what}: {detail}", parse_retry_after(retry_after))
        if "inspection" in code.lower():  # DataInspectionFailed: the content of this item, not the call
            raise ContentRefused(f"{what}: DashScope refused the content ({detail})")
        raise ProviderError(f"{what}: {detail}")

    def transport(self, what: str, exc: Exception) -> Exception:
        """Map an exception from the SDK's transport to TransientError (network) or ProviderError."""
        if isinstance(exc, ProviderError):
            return exc
        if isinstance(exc, TransientError):
            return exc if str(exc).startswith(what) else TransientError(f"{what}: {self.redact(str(exc))}")
        names = " ".join(t.__name__.lower() for t in type(exc).__mro__)
        text = self.redact(f"{type(exc).__name__}: {_short(exc)}")
        if isinstance(exc, (TimeoutError, ConnectionError, OSError)) or any(
                word in names for word in ("timeout", "connection", "clienterror", "requestexception")):
            return TransientError(f"{what}: {text}")
        return ProviderError(f"{what}: {text}")

    def call(self, what: str, fn: Callable[[float], object], own_timeout: float | None = None):
        """Run one SDK call under the retry policy and the run's budget: `fn(timeout)` gets the seconds
        this try may take; transport errors are classified."""
        def once():
            timeout = self.budget.timeout(own_timeout or self.timeout, what)
            if self.throttle:
                self.throttle()
            try:
                return fn(timeout)
            except Exception as exc:  # the SDK raises many transport types; classify them all
                raise self.transport(what, exc) from None
        return self.retry.call(what, once, budget=self.budget)

    def get_json(self, what: str, url: str, timeout: float, auth: bool = True) -> dict:
        """One GET with our own session and timeout (the SDK's task fetch waits up to 300 s)."""
        headers = {"Authorization": f"Bearer {self.key}"} if auth else {}
        try:
            reply = self.http.get(url, headers=headers, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - classified
            raise self.transport(what, exc) from None
        try:
            body = reply.json()
        except ValueError:
            body = {}
        if reply.status_code != 200:
            body = body if isinstance(body, dict) else {}
            self.fail(what, reply.status_code, str(body.get("code", "")), str(body.get("message", reply.reason)),
                      reply.headers.get("Retry-After"))
        if not isinstance(body, dict):
            raise ProviderError(f"{what}: reply is not a JSON object")
        return body

    def preflight(self) -> None:
        """One free request that only checks the key (status of a task that does not exist): a refused
        key stops the run before any decoding or local speech recognition. Other faults are left to
        the real calls (and their fallbacks)."""
        what = "DashScope key check"
        url = f"{self.http_url.rstrip('/')}/tasks/autoclip-preflight-{uuid.uuid4().hex[:12]}"
        try:
            self.get_json(what, url, timeout=min(10.0, self.timeout))
        except ProviderAuthError:
            raise
        except (ProviderError, TransientError) as exc:
            log.info("%s: %s (not a key problem; going on)", what, exc)


def _is_auth_code(code: str, message: str) -> bool:
    lowered = code.lower()
    text = message.lower()
    return lowered in _AUTH_CODES or lowered.startswith("invalidapikey") or (
        "api-key" in text and ("invalid" in text or "unauthorized" in text))


def billed_usage(raw) -> Usage:
    """Tokens as DashScope bills them: `input_tokens` already includes `image_tokens`."""
    raw = raw or {}
    get = raw.get if isinstance(raw, dict) else (lambda k, d=None: getattr(raw, k, d))
    return Usage(input_tokens=int(get("input_tokens", 0) or 0), output_tokens=int(get("output_tokens", 0) or 0))


class DashScopeChat:
    """ChatBackend for DashScope text models (Generation) and vision models (MultiModalConversation)."""

    provider = "dashscope"

    def __init__(self, session: DashScopeSession, model: str, multimodal: bool = False):
        self.session = session
        self.model = model
        self.multimodal = multimodal

    def complete(self, messages: list[dict], *, json_mode: bool = True) -> tuple[str, Usage]:
        what = f"DashScope {self.model}"

        def send(timeout: float):
            if self.multimodal:
                from dashscope import MultiModalConversation

                wire = [{"role": m["role"], "content": m["content"] if isinstance(m["content"], list)
                         else [{"text": m["content"]}]} for m in messages]
                response = MultiModalConversation.call(model=self.model, messages=wire, api_key=self.session.key,
                                                       request_timeout=timeout, session=self.session.http)
            else:
                from dashscope import Generation

                extra = {"response_format": {"type": "json_object"}} if json_mode else {}
                response = Generation.call(model=self.model, messages=messages, result_format="message",
                                           api_key=self.session.key, request_timeout=timeout,
                                           session=self.session.http, **extra)
            self.session.check(what, response)
            return response

        response = self.session.call(what, send)
        try:
            content = response.output["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderError(f"{what}: reply has no message content") from exc
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content), billed_usage(response.usage)


def _seconds(ms) -> float:
    return round(float(ms or 0) / 1000.0, 3)


def sentences_from_paraformer(raw: list[dict]) -> list[Sentence]:
    """Paraformer sentences (milliseconds, words with punctuation) -> our Sentence/Word in seconds; a
    sentence without text gets its words joined the way its language writes them (no spaces in CJK)."""
    out = []
    for item in raw:
        words = [Word(start=_seconds(w.get("begin_time")), end=_seconds(w.get("end_time")),
                      text=f"{w.get('text', '')}{w.get('punctuation', '') or ''}".strip())
                 for w in item.get("words") or [] if (w.get("text") or "").strip()]
        text = (item.get("text") or "").strip() or join_words([w.text for w in words])
        if not text:
            continue
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
            sentences, billed = self._by_file(url, hints, seconds)
            model = self.file_model
        else:
            sentences, billed = self._realtime(wav, hints, seconds)
            model = self.realtime_model
        self.usage[model] = self.usage.get(model, Usage()) + Usage(audio_seconds=round(billed, 3), calls=1)
        return Transcript(engine=self.name, language=",".join(hints) or None, sentences=sentences)

    def _realtime(self, wav: Path, hints: list[str], seconds: float) -> tuple[list[Sentence], float]:
        """The realtime protocol spoken here over aiohttp rather than through the SDK's Recognition.call:
        that blocks on a thread the SDK starts itself (not a daemon), and after the handshake its socket
        has no timeout (aiohttp's total timeout does not cover websocket messages) and no handle to close
        it, so a stalled task kept the process alive. Here the whole exchange is one coroutine under
        `asyncio.wait_for`: at the limit it is cancelled and the socket closed."""
        what = f"DashScope {self.realtime_model}"

        def stream(limit: float):
            box: dict = {}

            def work():
                try:
                    box["result"] = asyncio.run(asyncio.wait_for(self._exchange(what, wav, hints), limit))
                except asyncio.TimeoutError:
                    box["error"] = TransientError(f"{what}: no result within {limit:.0f} s")
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    box["error"] = exc

            # its own thread: the caller may already run an event loop; a daemon, as a last resort only
            worker = threading.Thread(target=work, name="paraformer-realtime", daemon=True)
            worker.start()
            worker.join(limit + 5)
            if worker.is_alive():
                raise TransientError(f"{what}: no result within {limit:.0f} s")
            if "error" in box:
                raise box["error"]
            return box["result"]

        raw, billed = self.session.call(what, stream, own_timeout=self.session.timeout + seconds * 1.5)
        return sentences_from_paraformer(raw), (billed if billed is not None else seconds)

    async def _exchange(self, what: str, wav: Path, hints: list[str]) -> tuple[list[dict], float | None]:
        """run-task, task-started, the WAV in 12,800-byte frames, finish-task; the final sentences and the
        billed seconds (task-finished `usage.duration`), or the error a task-failed event names."""
        import aiohttp

        task_id = uuid.uuid4().hex
        parameters = {"sample_rate": 16000, "format": "wav", **({"language_hints": hints} if hints else {})}
        run_task = {"header": {"action": "run-task", "task_id": task_id, "streaming": "duplex"},
                    "payload": {"model": self.realtime_model, "task_group": "audio", "task": "asr",
                                "function": "recognition", "parameters": parameters, "input": {}}}
        finish = {"header": {"action": "finish-task", "task_id": task_id, "streaming": "duplex"},
                  "payload": {"input": {}}}
        sentences: list[dict] = []
        async with aiohttp.ClientSession() as http:
            try:
                ws = await http.ws_connect(self.session.websocket_url, heartbeat=30,
                                           headers={"Authorization": f"Bearer {self.session.key}"})
            except aiohttp.WSServerHandshakeError as exc:
                self.session.fail(what, exc.status, str(exc.status), str(exc.message))
            except (aiohttp.ClientError, OSError) as exc:
                raise TransientError(f"{what}: {type(exc).__name__}: {_short(exc)}") from None
            async with ws:
                await ws.send_json(run_task)
                sender = None
                try:
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            continue
                        event = json.loads(message.data)
                        header = event.get("header") or {}
                        kind = header.get("event")
                        if kind == "task-started":
                            sender = asyncio.ensure_future(self._send_audio(ws, wav, finish))
                        elif kind == "result-generated":
                            sentence = ((event.get("payload") or {}).get("output") or {}).get("sentence") or {}
                            if sentence.get("sentence_end"):
                                sentences.append(sentence)
                        elif kind == "task-finished":
                            usage = (event.get("payload") or {}).get("usage") or {}
                            billed = usage.get("duration")
                            return sentences, (float(billed) if billed is not None else None)
                        elif kind == "task-failed":
                            self.session.fail(what, 44, str(header.get("error_code") or ""),
                                              str(header.get("error_message") or ""))
                    raise TransientError(f"{what}: the service closed the connection before the task finished")
                finally:
                    if sender is not None and not sender.done():
                        sender.cancel()

    @staticmethod
    async def _send_audio(ws, wav: Path, finish: dict) -> None:
        with open(wav, "rb") as handle:
            while chunk := handle.read(12800):
                await ws.send_bytes(chunk)
        await ws.send_json(finish)

    def _by_file(self, url: str, hints: list[str], seconds: float) -> tuple[list[Sentence], float]:
        from dashscope.audio.asr import Transcription

        what = f"DashScope {self.file_model}"
        extra = {"language_hints": hints} if hints else {}

        def submit(timeout: float):
            response = Transcription.async_call(model=self.file_model, file_urls=[url], api_key=self.session.key,
                                                request_timeout=timeout, session=self.session.http, **extra)
            self.session.check(what, response)
            return response

        task_id = self.session.call(what, submit).output["task_id"]
        status_url = f"{self.session.http_url.rstrip('/')}/tasks/{task_id}"
        patience = time.monotonic() + max(300.0, seconds * 3)
        pause = 1.0
        while True:
            status = self.session.call(what, lambda timeout: self.session.get_json(what, status_url, timeout))
            output = status.get("output") or {}
            state = output.get("task_status")
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELED", "UNKNOWN"):
                code = str(output.get("code") or "")
                message = str(output.get("message") or code or state)
                if _is_auth_code(code, message):
                    raise ProviderAuthError(auth_message(f"{what}: {code}: {self.session.redact(message)}"))
                raise ProviderError(f"{what}: transcription task {task_id} ended {state}: "
                                    f"{self.session.redact(message)}")
            if time.monotonic() > patience:
                raise ProviderError(f"{what}: transcription task {task_id} still {state} after the deadline")
            # the pause is waiting on the provider too
            self.session.budget.check(what)
            time.sleep(pause)
            self.session.budget.charge(pause)
            pause = min(5.0, pause * 1.5)
        sentences: list[Sentence] = []
        for result in output.get("results") or []:
            if result.get("subtask_status", "SUCCEEDED") != "SUCCEEDED":
                raise ProviderError(f"{what}: {result.get('file_url')}: {result.get('subtask_status')} "
                                    f"{result.get('message', '')}".strip())
            link = result["transcription_url"]
            body = self.session.call(what, lambda timeout: self.session.get_json(what, link, timeout, auth=False))
            for transcript in body.get("transcripts") or []:
                sentences += sentences_from_paraformer(transcript.get("sentences") or [])
        billed = float((status.get("usage") or {}).get("duration") or seconds)
        return sentences, billed
