"""A local DashScope stand-in for tests: an aiohttp app on loopback that speaks the wire protocol the
official ``dashscope`` SDK (2.0.2) and the ``openai`` client use, so production code that calls the real
SDKs with their base URLs pointed here can be exercised without the real service.

Served (all under ``http://HOST:PORT``):

- ``POST /api/v1/services/aigc/text-generation/generation``        kind "text"   (Generation.call)
- ``POST /api/v1/services/aigc/multimodal-generation/generation``  kind "vision" (MultiModalConversation.call)
- ``POST /api/v1/services/audio/asr/transcription``                kind "asr-file" (Transcription.async_call)
- ``GET  /api/v1/tasks/{task_id}``                                 kind "asr-poll" (Transcription.wait/fetch)
- ``GET  /files/{task_id}.json``                                   kind "asr-download" (transcription_url)
- ``GET  /api-ws/v1/inference`` (websocket, duplex run-task)       kind "asr-ws" (Recognition)
- ``POST /compatible-mode/v1/chat/completions``                    kind "chat" (openai client)
- ``GET  /api/v1/uploads?action=getPolicy`` + ``POST /oss-upload`` kind "upload" (SDK's file:// upload)

Anything else is answered 404 and logged with kind "unknown", so a wrong URL shows up in ``kinds()``.

Run by hand: ``python -m tests.dashscope_standin --port 8765``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import re
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

from aiohttp import WSMsgType, web

__all__ = ["StandIn", "Fault", "status", "delay", "content", "task_failed", "stall", "reset", "KINDS"]

KINDS = ("text", "vision", "asr-file", "asr-poll", "asr-download", "asr-ws", "chat", "upload")

_DEFAULT_CODES = {400: "InvalidParameter", 401: "InvalidApiKey", 403: "AccessDenied", 404: "NotFound",
                  429: "Throttling", 500: "InternalError", 503: "ServiceUnavailable"}
_DEFAULT_MESSAGES = {
    400: "stand-in: scripted invalid parameter.",
    401: "Invalid API-key provided.",
    403: "Access denied.",
    404: "Not found.",
    429: "Requests rate limit exceeded, please try again later.",
    500: "An internal error has occured, please try again later or contact service support.",
    503: "Service temporarily unavailable, possibly overloaded or not ready.",
}
IMAGE_TOKENS = 256  # usage.image_tokens charged per image item (a fixed, deterministic stand-in figure)
WS_ERROR_STATUS = 44  # what the SDK reports as status_code for a websocket task-failed event
CLIENT_GONE_STATUS = 499  # logged when a delayed request's client hung up before the answer


# --------------------------------------------------------------------------------------------- faults

@dataclass(frozen=True)
class Fault:
    """One scripted deviation from the default behaviour, consumed by one request of its kind."""

    type: str  # "status" | "delay" | "content" | "task_failed" | "stall" | "reset"
    code: Optional[int] = None
    code_text: Optional[str] = None
    seconds: float = 0.0
    text: Optional[str] = None
    retry_after: Optional[str] = None


_FAULT_KINDS = {
    "status": set(KINDS),
    "delay": set(KINDS),
    "content": {"text", "vision", "chat", "asr-download"},
    "task_failed": {"asr-ws", "asr-file"},
    "stall": {"asr-ws"},
    "reset": {"text", "vision", "asr-file", "asr-poll", "chat", "upload"},
}


def status(code: int, code_text: Optional[str] = None, retry_after: Optional[float] = None) -> Fault:
    """Answer with this HTTP status and an error body ``{"code", "message", "request_id"}`` (and a
    ``Retry-After`` header when given). For "asr-ws" the websocket handshake is refused with that status."""
    return Fault("status", code=int(code), code_text=code_text,
                 retry_after=None if retry_after is None else f"{retry_after:g}")


def delay(seconds: float) -> Fault:
    """Sleep this long, then answer normally (if the client is still there)."""
    return Fault("delay", seconds=float(seconds))


def content(text: str) -> Fault:
    """"text"/"vision"/"chat": answer 200 with exactly this assistant content.
    "asr-download": serve exactly this text as the transcription file."""
    return Fault("content", text=text)


def task_failed(message: str, code: str = "TaskFailed") -> Fault:
    """"asr-ws": send task-failed (after finish-task) with this error code instead of results.
    "asr-file": the submitted task's polls end with task_status FAILED and this message."""
    return Fault("task_failed", text=message, code_text=code)


def stall() -> Fault:
    """"asr-ws": accept the task (task-started), take the audio and finish-task, then never answer."""
    return Fault("stall")


def reset() -> Fault:
    """Drop the connection without an answer (a connection reset, as a flaky network or proxy does)."""
    return Fault("reset")


# ------------------------------------------------------------------------------------------- helpers

class _Reject(Exception):
    def __init__(self, status_code: int, code: str, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


@dataclass
class _Msg:
    role: str
    texts: list = field(default_factory=list)
    images: int = 0


def _now_text() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _normalise_messages(messages: Any) -> list:
    """DashScope ({"text"}, {"image"}, {"video": [...]}) and OpenAI ({"type": "text"|"image_url"}) content
    shapes, or a plain string content, as (role, texts, image count)."""
    if not isinstance(messages, list):
        raise _Reject(400, "InvalidParameter", "stand-in: input.messages must be a list")
    out = []
    for m in messages:
        if not isinstance(m, dict):
            raise _Reject(400, "InvalidParameter", "stand-in: every message must be an object")
        msg = _Msg(role=str(m.get("role", "")))
        c = m.get("content")
        if isinstance(c, str):
            msg.texts.append(c)
        elif isinstance(c, list):
            for item in c:
                if isinstance(item, str):
                    msg.texts.append(item)
                    continue
                if not isinstance(item, dict):
                    continue
                if item.get("type") == "image_url" or "image" in item:
                    msg.images += 1
                if "video" in item:
                    v = item["video"]
                    msg.images += len(v) if isinstance(v, list) else 1
                if isinstance(item.get("text"), str):
                    msg.texts.append(item["text"])
        out.append(msg)
    return out


def _parse_json_doc(text: str) -> Optional[dict]:
    try:
        doc = json.loads(text)
    except (ValueError, TypeError):
        fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.S)
        candidate = fenced.group(1) if fenced else text[text.find("{"): text.rfind("}") + 1]
        try:
            doc = json.loads(candidate)
        except (ValueError, TypeError):
            return None
    return doc if isinstance(doc, dict) else None


def _task_doc(msg: _Msg) -> Optional[dict]:
    for text in reversed(msg.texts):
        doc = _parse_json_doc(text)
        if doc is not None and "task" in doc:
            return doc
    return None


def _strip_images(obj: Any) -> Any:
    """The request without inline image data, for token counting."""
    if isinstance(obj, str):
        return "<image>" if obj.startswith("data:") else obj
    if isinstance(obj, list):
        return [_strip_images(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _strip_images(v) for k, v in obj.items()}
    return obj


def _name_of(video: Any) -> str:
    if isinstance(video, dict):
        for key in ("name", "title", "file", "filename", "path"):
            if video.get(key):
                value = str(video[key])
                return value.rsplit("/", 1)[-1] if key in ("file", "path") else value
        return json.dumps(video, ensure_ascii=False)
    return str(video)


def _words(texts: list, begin: int, end: int, final_punct: str) -> list:
    step = (end - begin) / len(texts)
    words = []
    for i, t in enumerate(texts):
        last = i == len(texts) - 1
        words.append({"begin_time": int(begin + i * step), "end_time": end if last else int(begin + (i + 1) * step),
                      "text": t, "punctuation": final_punct if last else ""})
    return words


_ORDINALS = ["one", "two", "three"]


def transcription_document(file_url: str) -> dict:
    """The transcription JSON served at a task's transcription_url: three sentences over 0..9000 ms."""
    sentences = []
    spans = [(0, 2800), (3000, 5800), (6000, 9000)]
    for i, (b, e) in enumerate(spans):
        text = f"stand-in sentence {_ORDINALS[i]}."
        sentences.append({"sentence_id": i + 1, "begin_time": b, "end_time": e, "text": text,
                          "words": _words(["stand-in", "sentence", _ORDINALS[i]], b, e, ".")})
    return {
        "file_url": file_url,
        "properties": {"audio_format": "pcm_s16le", "channels": [0], "original_sampling_rate": 16000,
                       "original_duration_in_milliseconds": 9000},
        "transcripts": [{"channel_id": 0, "content_duration_in_milliseconds": 9000,
                         "text": " ".join(s["text"] for s in sentences), "sentences": sentences}],
    }


# -------------------------------------------------------------------------------------------- server

class StandIn:
    """The stand-in server; ``start()`` runs it in a background thread with its own event loop."""

    api_key: str = "sk-standin"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self.log: list = []
        self.picks: list = []
        self._scripts: dict = collections.defaultdict(collections.deque)
        self._tasks: dict = {}  # asr-file task_id -> state
        self._uploads: dict = {}  # oss key -> bytes
        self._lock = threading.RLock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None
        self._runner: Optional[web.AppRunner] = None
        self._sockets: set = set()
        self._ready = threading.Event()
        self._start_error: Optional[BaseException] = None

    # ---- public interface -------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def http_base(self) -> str:
        return f"{self.base}/api/v1"

    @property
    def ws_base(self) -> str:
        return f"ws://{self.host}:{self.port}/api-ws/v1/inference"

    @property
    def compatible_base(self) -> str:
        return f"{self.base}/compatible-mode/v1"

    def start(self) -> "StandIn":
        if self._thread is not None:
            return self
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="dashscope-standin", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("DashScope stand-in did not start within 30 s")
        if self._start_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError(f"DashScope stand-in failed to start: {self._start_error}") from self._start_error
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        try:
            future.result(timeout=15)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=15)
            self._thread = None

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def kinds(self) -> list:
        with self._lock:
            return [e["kind"] for e in self.log if e["kind"] not in ("asr-poll", "asr-download")]

    def billed(self) -> dict:
        """What the stand-in billed, per model: the usage of every answer it gave (tokens; seconds of
        audio as "duration"), failed calls excluded, invalid-but-answered ones included."""
        out: dict = {}
        with self._lock:
            for e in self.log:
                usage = e.get("usage") or {}
                if not usage or not e.get("model"):
                    continue
                row = out.setdefault(e["model"], {"input_tokens": 0, "output_tokens": 0, "duration": 0})
                row["input_tokens"] += int(usage.get("input_tokens", usage.get("prompt_tokens", 0)) or 0)
                row["output_tokens"] += int(usage.get("output_tokens", usage.get("completion_tokens", 0)) or 0)
                row["duration"] += int(usage.get("duration", 0) or 0)
        return out

    def script(self, kind: str, *faults: Fault) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
        for f in faults:
            if not isinstance(f, Fault):
                raise TypeError(f"not a fault: {f!r} (use status(), delay(), content(), task_failed(), "
                                "stall(), reset())")
            if kind not in _FAULT_KINDS[f.type]:
                raise ValueError(f"fault {f.type!r} does not apply to kind {kind!r}")
        with self._lock:
            self._scripts[kind].extend(faults)

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self.picks.clear()
            self._scripts.clear()
            self._tasks.clear()
            self._uploads.clear()

    # ---- loop / lifecycle -------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._start_error = e
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _startup(self) -> None:
        app = web.Application(client_max_size=512 * 1024 * 1024)
        r = app.router
        r.add_post("/api/v1/services/aigc/text-generation/generation", self._h_text)
        r.add_post("/api/v1/services/aigc/multimodal-generation/generation", self._h_vision)
        r.add_post("/api/v1/services/audio/asr/transcription", self._h_asr_submit)
        r.add_get("/api/v1/tasks/{task_id}", self._h_asr_poll)
        r.add_get("/files/{name}", self._h_asr_download)
        r.add_get("/api-ws/v1/inference", self._h_ws)
        r.add_get("/api-ws/v1/inference/", self._h_ws)
        r.add_post("/compatible-mode/v1/chat/completions", self._h_chat)
        r.add_get("/api/v1/uploads", self._h_upload_policy)
        r.add_post("/oss-upload", self._h_upload_file)
        r.add_route("*", "/{tail:.*}", self._h_unknown)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _shutdown(self) -> None:
        for ws in list(self._sockets):
            try:
                await asyncio.wait_for(ws.close(), 1)
            except Exception:  # noqa: BLE001
                pass
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- bookkeeping ------------------------------------------------------------------------------

    def _record(self, kind: str, model: Any, auth: Optional[str], body: Any) -> dict:
        entry = {"kind": kind, "model": model, "status": None, "auth": auth, "body": body, "at": time.monotonic()}
        with self._lock:
            self.log.append(entry)
        return entry

    def _take(self, kind: str) -> Optional[Fault]:
        with self._lock:
            queue = self._scripts.get(kind)
            return queue.popleft() if queue else None

    def _authorized(self, auth: Optional[str]) -> bool:
        return auth == f"Bearer {self.api_key}"

    @staticmethod
    def _error_body(status_code: int, code: Optional[str], message: Optional[str], compat: bool) -> dict:
        code = code or _DEFAULT_CODES.get(status_code) or ("InternalError" if status_code >= 500 else "BadRequest")
        message = message or _DEFAULT_MESSAGES.get(status_code) or f"stand-in: scripted HTTP {status_code}"
        request_id = str(uuid.uuid4())
        if compat:  # OpenAI-compatible mode answers errors the OpenAI way
            kind = "invalid_request_error" if status_code < 500 else "internal_error"
            return {"error": {"message": message, "type": kind, "param": None, "code": code},
                    "request_id": request_id}
        return {"code": code, "message": message, "request_id": request_id}

    def _error(self, entry: dict, status_code: int, code: Optional[str] = None, message: Optional[str] = None,
               compat: bool = False) -> web.Response:
        entry["status"] = status_code
        return web.json_response(self._error_body(status_code, code, message, compat), status=status_code)

    async def _serve(self, request: web.Request, kind: str, produce: Callable, *, auth_required: bool = True,
                     compat: bool = False, body_kind: str = "json", body: Any = None,
                     model: Any = None) -> web.Response:
        """Common path of every HTTP request: log, auth, scripted fault, then ``produce(fault, body)``."""
        auth = request.headers.get("Authorization")
        parse_error = None
        if body_kind == "json":
            raw = await request.read()
            try:
                body = json.loads(raw.decode("utf-8")) if raw else {}
            except (UnicodeDecodeError, ValueError):
                body, parse_error = raw.decode("utf-8", "replace"), "stand-in: request body is not JSON"
            if isinstance(body, dict):
                model = body.get("model")
        entry = self._record(kind, model, auth, body)
        if auth_required and not self._authorized(auth):
            return self._error(entry, 401, "InvalidApiKey", "Invalid API-key provided.", compat)
        if parse_error:
            return self._error(entry, 400, "InvalidParameter", parse_error, compat)
        fault = self._take(kind)
        if fault is not None and fault.type == "status":
            response = self._error(entry, fault.code, fault.code_text, None, compat)
            if fault.retry_after is not None:
                response.headers["Retry-After"] = fault.retry_after
            return response
        if fault is not None and fault.type == "reset":
            entry["status"] = "reset"
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=200)  # never reaches the client: the transport is gone
        if fault is not None and fault.type == "delay":
            await asyncio.sleep(fault.seconds)
            if request.transport is None or request.transport.is_closing():
                entry["status"] = CLIENT_GONE_STATUS
                return web.Response(status=CLIENT_GONE_STATUS)
            fault = None
        try:
            response = produce(fault, body)
        except _Reject as r:
            return self._error(entry, r.status_code, r.code, r.message, compat)
        entry["status"] = response.status
        if response.status == 200 and response.content_type == "application/json":
            try:
                entry["usage"] = json.loads(response.body).get("usage")  # what this answer bills
            except (TypeError, ValueError, AttributeError):
                pass
        return response

    # ---- LLM default behaviours ------------------------------------------------------------------

    def _default_content(self, messages: list) -> str:
        users = [m for m in messages if m.role == "user"]
        if not users:
            raise _Reject(400, "InvalidParameter", "stand-in: the conversation has no user message")
        source = users[-1]
        doc = _task_doc(source)
        if doc is None:
            raise _Reject(400, "InvalidParameter",
                          "stand-in: the last user message carries no JSON document with a \"task\"")
        if doc.get("task") == "repair":
            source = users[0]
            doc = _task_doc(source)
            if doc is None or doc.get("task") == "repair":
                raise _Reject(400, "InvalidParameter",
                              "stand-in: repair asked, but the first user message has no original task")
        task = doc.get("task")
        if task == "theme":
            videos = doc.get("videos") or []
            name = _name_of(videos[0]) if videos else "no videos"
            answer = {"title": f"Stand-in theme: {name}",
                      "summary": f"A stand-in summary of {len(videos)} video(s), led by {name}.",
                      "keywords": ["standin", "highlight", "test"]}
        elif task == "select":
            answer = {"picks": self._select(doc)}
        elif task == "describe":
            shots = doc.get("shots") or []
            k = source.images
            out = []
            for s in shots:
                n = s.get("shot") if isinstance(s, dict) else s
                out.append({"shot": n, "caption": f"stand-in caption for shot {n} ({k} frames)", "tags": ["standin"]})
            answer = {"shots": out}
        else:
            raise _Reject(400, "InvalidParameter", f"stand-in: unknown task {task!r}")
        return json.dumps(answer, ensure_ascii=False)

    def _select(self, doc: dict) -> list:
        theme = doc.get("theme")
        title = theme.get("title") if isinstance(theme, dict) else theme
        budget = float(doc.get("budget_seconds") or 0)
        candidates = [c for c in (doc.get("candidates") or []) if isinstance(c, dict) and "id" in c]

        def length(c: dict) -> float:
            return float(c.get("end", 0)) - float(c.get("start", 0))

        evens = sorted((c for c in candidates if int(c["id"]) % 2 == 0), key=lambda c: int(c["id"]))
        chosen, total = [], 0.0
        for c in evens:
            if total + length(c) <= budget + 1e-9:
                chosen.append(int(c["id"]))
                total += length(c)
        if not chosen:
            if evens:
                chosen = [int(min(evens, key=lambda c: (length(c), int(c["id"])))["id"])]
            elif candidates:
                chosen = [int(candidates[0]["id"])]
        with self._lock:
            self.picks.append(list(chosen))
        return [{"segment_id": i, "reason": f"stand-in pick {i} for {title}"} for i in chosen]

    def _llm_reply(self, fault: Optional[Fault], messages: list) -> str:
        if fault is not None and fault.type == "content":
            return fault.text
        return self._default_content(messages)

    # ---- handlers: DashScope native -------------------------------------------------------------

    @staticmethod
    def _reject_stream(request: web.Request, body: Any) -> None:
        if request.headers.get("X-DashScope-SSE", "").lower() == "enable" or (
                isinstance(body, dict) and (body.get("parameters") or {}).get("stream")):
            raise _Reject(400, "InvalidParameter", "stand-in: streaming (SSE) is not supported; call without stream")

    @staticmethod
    def _check_oss(request: web.Request, body: Any) -> None:
        if "oss://" in json.dumps(body.get("input"), ensure_ascii=False) and \
                request.headers.get("X-DashScope-OssResourceResolve", "").lower() != "enable":
            raise _Reject(400, "InvalidParameter",
                          "stand-in: oss:// URLs need the header X-DashScope-OssResourceResolve: enable")

    async def _h_text(self, request: web.Request) -> web.Response:
        def produce(fault, body):
            self._reject_stream(request, body)
            self._check_oss(request, body)
            inp = body.get("input") or {}
            if "messages" in inp:
                messages = _normalise_messages(inp["messages"])
            elif "prompt" in inp:
                messages = [_Msg("user", [str(inp["prompt"])])]
            else:
                raise _Reject(400, "InvalidParameter", "stand-in: input.messages or input.prompt is required")
            text = self._llm_reply(fault, messages)
            in_tok = len(json.dumps(body, ensure_ascii=False)) // 4
            out_tok = len(text) // 4
            if (body.get("parameters") or {}).get("result_format") == "message":
                output = {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}
            else:
                output = {"text": text, "finish_reason": "stop"}
            return web.json_response({"request_id": str(uuid.uuid4()), "output": output,
                                      "usage": {"input_tokens": in_tok, "output_tokens": out_tok,
                                                "total_tokens": in_tok + out_tok}})
        return await self._serve(request, "text", produce)

    async def _h_vision(self, request: web.Request) -> web.Response:
        def produce(fault, body):
            self._reject_stream(request, body)
            self._check_oss(request, body)
            inp = body.get("input") or {}
            messages = _normalise_messages(inp.get("messages"))
            text = self._llm_reply(fault, messages)
            images = sum(m.images for m in messages)
            image_tokens = images * IMAGE_TOKENS
            in_tok = len(json.dumps(_strip_images(body), ensure_ascii=False)) // 4 + image_tokens
            out_tok = len(text) // 4
            return web.json_response({
                "request_id": str(uuid.uuid4()),
                "output": {"choices": [{"finish_reason": "stop",
                                        "message": {"role": "assistant", "content": [{"text": text}]}}]},
                "usage": {"input_tokens": in_tok, "output_tokens": out_tok, "total_tokens": in_tok + out_tok,
                          "image_tokens": image_tokens}})
        return await self._serve(request, "vision", produce)

    # ---- handlers: file transcription -------------------------------------------------------------

    async def _h_asr_submit(self, request: web.Request) -> web.Response:
        def produce(fault, body):
            if request.headers.get("X-DashScope-Async", "").lower() != "enable":
                raise _Reject(403, "AccessDenied", "current user api does not support synchronous calls")
            urls = (body.get("input") or {}).get("file_urls")
            if not isinstance(urls, list) or not urls:
                raise _Reject(400, "InvalidParameter", "stand-in: input.file_urls must be a non-empty list")
            task_id = str(uuid.uuid4())
            with self._lock:
                self._tasks[task_id] = {"model": body.get("model"), "file_urls": list(urls), "polls": 0,
                                        "failed": fault.text if fault is not None else None,
                                        "submit_time": _now_text()}
            return web.json_response({"request_id": str(uuid.uuid4()),
                                      "output": {"task_id": task_id, "task_status": "PENDING"}})
        return await self._serve(request, "asr-file", produce)

    def _transcription_url(self, task_id: str, index: int) -> str:
        return f"{self.base}/files/{task_id}.json" if index == 0 else f"{self.base}/files/{task_id}-{index}.json"

    async def _h_asr_poll(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        with self._lock:
            task = self._tasks.get(task_id)

        def produce(fault, body):
            rid = str(uuid.uuid4())
            if task is None:
                return web.json_response({"request_id": rid, "output": {"task_id": task_id, "task_status": "UNKNOWN"}})
            with self._lock:
                task["polls"] += 1
                polls = task["polls"]
            urls = task["file_urls"]
            out = {"task_id": task_id, "submit_time": task["submit_time"], "scheduled_time": task["submit_time"]}
            if polls < 2:
                out.update(task_status="RUNNING", task_metrics={"TOTAL": len(urls), "SUCCEEDED": 0, "FAILED": 0})
                return web.json_response({"request_id": rid, "output": out})
            task.setdefault("end_time", _now_text())
            if task["failed"] is not None:
                out.update(task_status="FAILED", end_time=task["end_time"], code="TaskFailed", message=task["failed"],
                           results=[{"file_url": u, "code": "TaskFailed", "message": task["failed"],
                                     "subtask_status": "FAILED"} for u in urls],
                           task_metrics={"TOTAL": len(urls), "SUCCEEDED": 0, "FAILED": len(urls)})
                return web.json_response({"request_id": rid, "output": out})
            out.update(task_status="SUCCEEDED", end_time=task["end_time"],
                       results=[{"file_url": u, "transcription_url": self._transcription_url(task_id, i),
                                 "subtask_status": "SUCCEEDED"} for i, u in enumerate(urls)],
                       task_metrics={"TOTAL": len(urls), "SUCCEEDED": len(urls), "FAILED": 0})
            return web.json_response({"request_id": rid, "output": out, "usage": {"duration": 9 * len(urls)}})
        return await self._serve(request, "asr-poll", produce, body_kind="none", body={"task_id": task_id},
                                 model=task["model"] if task else None)

    async def _h_asr_download(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        m = re.fullmatch(r"(.+?)(?:-(\d+))?\.json", name)
        with self._lock:
            task = self._tasks.get(m.group(1)) if m else None

        def produce(fault, body):
            if task is None:
                raise _Reject(404, "NoSuchKey", "The specified key does not exist.")
            index = int(m.group(2) or 0)
            if index >= len(task["file_urls"]) or task["failed"] is not None:
                raise _Reject(404, "NoSuchKey", "The specified key does not exist.")
            if fault is not None and fault.type == "content":
                return web.Response(text=fault.text, content_type="application/json")
            return web.json_response(transcription_document(task["file_urls"][index]))
        # a presigned result URL: no Authorization needed (the caller downloads it with any HTTP client)
        return await self._serve(request, "asr-download", produce, auth_required=False, body_kind="none",
                                 body={"file": name}, model=task["model"] if task else None)

    # ---- handlers: uploads (the SDK's file:// path) ---------------------------------------------

    async def _h_upload_policy(self, request: web.Request) -> web.Response:
        def produce(fault, body):
            if request.query.get("action") != "getPolicy":
                raise _Reject(400, "InvalidParameter", "stand-in: only action=getPolicy is served")
            return web.json_response({"request_id": str(uuid.uuid4()), "data": {
                "policy": "c3RhbmQtaW4tcG9saWN5", "signature": "stand-in-signature",
                "upload_dir": f"standin/{uuid.uuid4().hex[:12]}", "upload_host": f"{self.base}/oss-upload",
                "expire_in_seconds": 300, "max_file_size_mb": 100, "capacity_limit_mb": 1000,
                "oss_access_key_id": "STANDIN", "x_oss_object_acl": "private", "x_oss_forbid_overwrite": "true"}})
        return await self._serve(request, "upload", produce, body_kind="none", body=dict(request.query),
                                 model=request.query.get("model"))

    async def _h_upload_file(self, request: web.Request) -> web.Response:
        form = await request.post()
        key = str(form.get("key", ""))
        upload = form.get("file")
        data = upload.file.read() if hasattr(upload, "file") else b""
        info = {"key": key, "size": len(data), "filename": getattr(upload, "filename", None)}

        def produce(fault, body):
            if not key:
                raise _Reject(400, "InvalidArgument", "stand-in: the form has no key")
            with self._lock:
                if key in self._uploads and form.get("x-oss-forbid-overwrite") == "true":
                    raise _Reject(409, "FileAlreadyExists", f"The object {key} already exists.")
                self._uploads[key] = data
            return web.Response(status=200)
        return await self._serve(request, "upload", produce, auth_required=False, body_kind="none", body=info)

    # ---- handler: OpenAI-compatible chat ----------------------------------------------------------

    async def _h_chat(self, request: web.Request) -> web.Response:
        def produce(fault, body):
            if body.get("stream"):
                raise _Reject(400, "InvalidParameter", "stand-in: stream=true is not supported")
            messages = _normalise_messages(body.get("messages"))
            text = self._llm_reply(fault, messages)
            images = sum(m.images for m in messages)
            prompt = len(json.dumps(_strip_images(body), ensure_ascii=False)) // 4 + images * IMAGE_TOKENS
            completion = len(text) // 4
            return web.json_response({
                "id": f"chatcmpl-{uuid.uuid4()}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "system_fingerprint": None,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                          "total_tokens": prompt + completion}})
        return await self._serve(request, "chat", produce, compat=True)

    async def _h_unknown(self, request: web.Request) -> web.Response:
        entry = self._record("unknown", None, request.headers.get("Authorization"),
                             {"method": request.method, "path": request.path_qs})
        return self._error(entry, 404, "NotFound", f"stand-in: nothing served at {request.method} {request.path}")

    # ---- handler: realtime recognition websocket --------------------------------------------------

    async def _h_ws(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization")
        if not self._authorized(auth):
            entry = self._record("asr-ws", None, auth, None)
            return self._error(entry, 401, "InvalidApiKey", "Invalid API-key provided.")
        first_fault = self._take("asr-ws")
        if first_fault is not None and first_fault.type == "status":
            entry = self._record("asr-ws", None, auth, None)
            return self._error(entry, first_fault.code, first_fault.code_text)
        ws = web.WebSocketResponse(max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        self._sockets.add(ws)
        task = None  # the running task on this connection: dict(entry, task_id, fault, head, sample_rate)
        first = True
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    if task is not None and task["started"]:
                        task["entry"]["body"]["audio_bytes"] += len(msg.data)
                        if len(task["head"]) < 512:
                            task["head"] += msg.data[:512]
                    continue
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(msg.data)
                    header = frame.get("header") or {}
                except (ValueError, AttributeError):
                    await self._ws_failed(ws, "", "InvalidParameter", "stand-in: text frame is not a JSON object")
                    continue
                action, task_id = header.get("action"), header.get("task_id") or ""
                if action == "run-task":
                    if task is not None:
                        await self._ws_failed(ws, task_id, "InvalidParameter", "stand-in: a task is already running")
                        continue
                    payload = frame.get("payload") or {}
                    body = dict(frame)
                    body["audio_bytes"] = 0
                    entry = self._record("asr-ws", payload.get("model"), auth, body)
                    fault = first_fault if first else self._take("asr-ws")
                    first = False
                    params = payload.get("parameters") or {}
                    task = {"entry": entry, "task_id": task_id, "fault": fault, "head": b"", "started": False,
                            "sample_rate": int(params.get("sample_rate") or 16000)}
                    if fault is not None and fault.type == "status":  # only for later tasks on one connection
                        entry["status"] = WS_ERROR_STATUS
                        await self._ws_failed(ws, task_id, fault.code_text or _DEFAULT_CODES.get(fault.code, "Error"),
                                              _DEFAULT_MESSAGES.get(fault.code, f"stand-in: scripted {fault.code}"))
                        task = None
                        continue
                    if fault is not None and fault.type == "delay":
                        await asyncio.sleep(fault.seconds)
                        if ws.closed:
                            entry["status"] = CLIENT_GONE_STATUS
                            break
                    task["started"] = True
                    await ws.send_str(json.dumps(self._ws_header(task_id, "task-started", {})))
                elif action == "continue-task":
                    continue
                elif action == "finish-task":
                    if task is None:
                        await self._ws_failed(ws, task_id, "InvalidParameter", "stand-in: finish-task without run-task")
                        continue
                    entry = task["entry"]
                    if task["fault"] is not None and task["fault"].type == "stall":
                        entry["status"] = "stalled"
                        continue  # accepted, never answered; the client must give up by itself
                    if task["fault"] is not None and task["fault"].type == "task_failed":
                        entry["status"] = WS_ERROR_STATUS
                        await self._ws_failed(ws, task["task_id"], task["fault"].code_text or "TaskFailed",
                                              task["fault"].text)
                    else:
                        await self._ws_results(ws, task)
                        entry["status"] = 200
                    task = None
                else:
                    await self._ws_failed(ws, task_id, "InvalidParameter", f"stand-in: unknown action {action!r}")
        except ConnectionResetError:  # the client went away mid-task
            pass
        finally:
            self._sockets.discard(ws)
            if task is not None and task["entry"]["status"] is None:
                task["entry"]["status"] = CLIENT_GONE_STATUS
        return ws

    @staticmethod
    def _ws_header(task_id: str, event: str, payload: dict, **extra) -> dict:
        return {"header": {"task_id": task_id, "event": event, "attributes": {}, **extra}, "payload": payload}

    async def _ws_failed(self, ws: web.WebSocketResponse, task_id: str, code: str, message: str) -> None:
        if not ws.closed:
            await ws.send_str(json.dumps(self._ws_header(task_id, "task-failed", {},
                                                         error_code=code, error_message=message)))

    async def _ws_results(self, ws: web.WebSocketResponse, task: dict) -> None:
        total = task["entry"]["body"]["audio_bytes"]
        head = task["head"]
        if head[:4] == b"RIFF":  # a WAV file sent as-is (Recognition.call streams the whole file)
            pos = head.find(b"data", 12)
            total -= (pos + 8) if pos >= 0 else 44
        duration_ms = max(0, total) * 1000 // (task["sample_rate"] * 2)
        for i in range(math.ceil(duration_ms / 3000)):
            begin, end = i * 3000, min((i + 1) * 3000, duration_ms)
            text = f"stand-in speech {i + 1}"
            sentence = {"begin_time": begin, "end_time": end, "text": text, "sentence_end": True,
                        "words": _words(["stand-in", "speech", str(i + 1)], begin, end, "")}
            await ws.send_str(json.dumps(self._ws_header(
                task["task_id"], "result-generated",
                {"output": {"sentence": sentence}, "usage": {"duration": max(1, math.ceil((end - begin) / 1000))}})))
        task["entry"]["usage"] = {"duration": math.ceil(duration_ms / 1000)}
        await ws.send_str(json.dumps(self._ws_header(
            task["task_id"], "task-finished", {"output": {}, "usage": task["entry"]["usage"]})))


# ---------------------------------------------------------------------------------------------- main

def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="Local DashScope stand-in (tests and manual acceptance runs)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default=StandIn.api_key)
    args = parser.parse_args(argv)
    stand_in = StandIn(args.host, args.port)
    stand_in.api_key = args.api_key
    stand_in.start()
    print(f"DASHSCOPE_HTTP_BASE_URL={stand_in.http_base}")
    print(f"DASHSCOPE_WEBSOCKET_BASE_URL={stand_in.ws_base}")
    print(f"DASHSCOPE_COMPATIBLE_BASE_URL={stand_in.compatible_base}")
    print(f"api key: {stand_in.api_key}   (Ctrl-C or SIGTERM to stop)", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(0.5):
        pass
    stand_in.stop()
    print(f"log kinds: {stand_in.kinds()}")
    for e in stand_in.log:
        print(f"  {e['kind']:<13} {str(e['model']):<24} {e['status']}")
    print(f"picks: {stand_in.picks}", flush=True)
    return 0


STANDIN_KEY = "sk-standin"


def standin_settings(standin, monkeypatch, tmp_path, **extra: str):
    """Settings that send every stage to the stand-in, with short timeouts and back-off and a fresh response
    cache; `extra` adds or overrides environment variables."""
    from autoclip.config import get_settings

    standin.reset()
    env = {"AUTOCLIP_PROVIDER": "dashscope", "DASHSCOPE_API_KEY": STANDIN_KEY,
           "AUTOCLIP_DASHSCOPE_BASE_URL": standin.http_base, "AUTOCLIP_DASHSCOPE_WEBSOCKET_URL": standin.ws_base,
           "AUTOCLIP_RETRY_BASE_DELAY": "0.01", "AUTOCLIP_REQUEST_TIMEOUT": "2",
           "AUTOCLIP_CACHE_DIR": str(tmp_path / "cache"), **extra}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


if __name__ == "__main__":
    raise SystemExit(main())
