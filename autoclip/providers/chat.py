"""Any chat model as a transport: a backend sends messages and returns text + usage; the response cache
means a re-run costs no tokens; `parse_json` checks an answer against the shape it must have.

A backend (DashScope SDK, OpenAI-compatible client) only has to send messages and return text + usage.
What to ask and how to judge the answers is planning's business (planning/llm.py) or vision's
(providers/vision.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Callable, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from autoclip.errors import ProviderError
from autoclip.models import Usage

log = logging.getLogger("autoclip.providers")
T = TypeVar("T")


class ContentRefused(ProviderError):
    """The service refused this input (a content-inspection 400): this item only, and a retry gets the
    same answer, so it is recorded but not retried later."""


class ChatBackend(Protocol):
    provider: str
    model: str

    def complete(self, messages: list[dict], *, json_mode: bool = True) -> tuple[str, Usage]:
        """Send neutral messages (content: str, or a list of {"text"} / {"image": data URI}); return the
        assistant text and what it cost. Raises ProviderError (or ProviderAuthError) when it cannot."""


class ResponseCache:
    """Answers on disk keyed by a hash of (provider, model, messages, parameters)."""

    def __init__(self, folder: Path):
        self.folder = folder

    @staticmethod
    def key(*parts) -> str:
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> dict | None:
        path = self.folder / key[:2] / f"{key}.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: dict) -> None:
        path = self.folder / key[:2] / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle, ensure_ascii=False)
        os.replace(tmp, path)


class CachedChat:
    """A backend wrapped with the response cache; counts usage per model for the run's report. Only
    answers that passed the caller's check are cached, so an invalid answer is asked again next run;
    every answer received is counted, valid or not (the service bills it)."""

    def __init__(self, backend: ChatBackend, cache: ResponseCache | None):
        self.backend = backend
        self.cache = cache
        self.provider, self.model = backend.provider, backend.model
        self.usage = Usage()

    def ask(self, messages: list[dict], accept: Callable[[str], T], *, json_mode: bool = True) -> T:
        """The answer to `messages` as `accept(text)` makes it; `accept` raises ValueError for an answer
        that must not be used (then nothing is cached and the error goes to the caller)."""
        key = ResponseCache.key(self.provider, self.model, messages, json_mode)
        hit = self.cache.get(key) if self.cache else None
        if hit is not None:
            try:
                result = accept(hit["text"])
            except ValueError:
                pass  # cached by an older version that did not check: ask again
            else:
                self.usage += Usage(calls=1, cached_calls=1)
                return result
        text, usage = self.backend.complete(messages, json_mode=json_mode)
        self.usage += usage + Usage(calls=1)
        result = accept(text)
        if self.cache:
            self.cache.put(key, {"text": text, "usage": usage.model_dump()})
        return result


def parse_json(text: str, shape: type[BaseModel]):
    """Validate a JSON answer (tolerating a ```json fence); raise ValueError with readable problems."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`")
        body = body[body.find("{"):] if "{" in body else body
    try:
        return shape.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"the answer is not the JSON object asked for ({problems})") from None
