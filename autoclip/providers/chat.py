"""Planning and vision on top of any chat model: JSON answers validated with pydantic, one repair round,
windows for long inputs, and a response cache so a re-run costs no tokens.

A backend (DashScope SDK, OpenAI-compatible client) only has to send messages and return text + usage.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ValidationError

from autoclip.errors import ProviderAuthError, ProviderError
from autoclip.models import (Candidate, Interval, Pick, Selection, SelectionRequest, ShotCaption, Theme,
                             Usage, VideoDigest)
from autoclip.planning import prompts
from autoclip.planning.validation import selection_problems

log = logging.getLogger("autoclip.providers")


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
    """A backend wrapped with the response cache; counts usage per model for the run's report."""

    def __init__(self, backend: ChatBackend, cache: ResponseCache | None):
        self.backend = backend
        self.cache = cache
        self.provider, self.model = backend.provider, backend.model
        self.usage = Usage()

    def complete(self, messages: list[dict], *, json_mode: bool = True) -> str:
        key = ResponseCache.key(self.provider, self.model, messages, json_mode)
        hit = self.cache.get(key) if self.cache else None
        if hit is not None:
            self.usage += Usage(calls=1, cached_calls=1)
            return hit["text"]
        text, usage = self.backend.complete(messages, json_mode=json_mode)
        self.usage += usage + Usage(calls=1)
        if self.cache:
            self.cache.put(key, {"text": text, "usage": usage.model_dump()})
        return text


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


class ChatPlanner:
    """LanguageModel (pass 1 and pass 2) on a chat backend."""

    heuristic = False

    def __init__(self, chat: CachedChat, token_budget: int = 12000):
        self.chat = chat
        self.provider, self.model = chat.provider, chat.model
        self.token_budget = token_budget

    def _ask(self, messages: list[dict], shape: type[BaseModel], check=None):
        """One answer, validated; one repair round with the problems; then ProviderError."""
        text = self.chat.complete(messages)
        for attempt in (1, 2):
            try:
                answer = parse_json(text, shape)
                problems = check(answer) if check else []
                if not problems:
                    return answer
            except ValueError as exc:
                problems = [str(exc)]
            if attempt == 2:
                raise ProviderError(f"{self.provider} {self.model}: answer still invalid after one repair: "
                                    + "; ".join(problems))
            log.warning("%s %s: invalid answer (%s); asking once more", self.provider, self.model,
                        "; ".join(problems))
            messages = prompts.repair_messages(messages, text, problems)
            text = self.chat.complete(messages)

    def _usage(self, before: Usage) -> dict[str, Usage]:
        now = self.chat.usage
        return {self.model: Usage(input_tokens=now.input_tokens - before.input_tokens,
                                  output_tokens=now.output_tokens - before.output_tokens,
                                  calls=now.calls - before.calls,
                                  cached_calls=now.cached_calls - before.cached_calls)}

    def theme(self, digests: list[VideoDigest]) -> tuple[Theme, dict[str, Usage]]:
        before = self.chat.usage
        answer = self._ask(prompts.theme_messages(digests), prompts.ThemeAnswer)
        return answer.theme(), self._usage(before)

    def select(self, request: SelectionRequest) -> tuple[Selection, dict[str, Usage]]:
        before = self.chat.usage
        candidates = request.candidates
        if prompts.estimate_tokens(prompts.selection_messages(request)) > self.token_budget:
            candidates = self._shortlist(request)
        picks = self._select(request, candidates, request.target_duration)
        return Selection(picks=picks), self._usage(before)

    def _select(self, request: SelectionRequest, candidates: list[Candidate], budget: float) -> list[Pick]:
        by_id = {c.id: c for c in candidates}
        answer = self._ask(prompts.selection_messages(request, candidates, budget), prompts.SelectionAnswer,
                           lambda a: selection_problems(Selection(picks=[Pick(**p.model_dump()) for p in a.picks]),
                                                        by_id, budget))
        return [Pick(segment_id=p.segment_id, reason=p.reason.strip()) for p in answer.picks]

    def _shortlist(self, request: SelectionRequest) -> list[Candidate]:
        """Too many candidates for one call: pick within windows of each video (budget in proportion to
        the window's share of all material, doubled so the final pass has a choice), so picks do not
        cluster at the start; the final pass chooses across the shortlist."""
        total = sum(c.duration for c in request.candidates) or 1.0
        per_call = max(20, int(len(request.candidates) * self.token_budget
                               / max(1, prompts.estimate_tokens(prompts.selection_messages(request)))))
        chosen: list[Candidate] = []
        videos = sorted({c.video_index for c in request.candidates})
        for video in videos:
            own = [c for c in request.candidates if c.video_index == video]
            for start in range(0, len(own), per_call):
                window = own[start:start + per_call]
                share = sum(c.duration for c in window) / total
                budget = max(request.min_clip * 2, min(request.target_duration, 2 * share * request.target_duration))
                picks = self._select(request, window, budget)
                ids = {p.segment_id for p in picks}
                chosen += [c for c in window if c.id in ids]
        log.info("%s %s: %d candidates in windows -> shortlist of %d", self.provider, self.model,
                 len(request.candidates), len(chosen))
        return chosen or request.candidates[:per_call]


def data_uri(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()


class ChatVisionDescriber:
    """VisionDescriber on a multimodal chat backend: shots batched, a bounded number of frames per call."""

    def __init__(self, chat: CachedChat, frames_per_call: int = 8):
        self.chat = chat
        self.name = f"{chat.provider}:{chat.model}"
        self.frames_per_call = frames_per_call
        self.failures: list[str] = []

    @property
    def usage(self) -> dict[str, Usage]:
        return {self.chat.model: self.chat.usage}

    def describe(self, shots: list[tuple[Interval, list[Path]]]) -> list[ShotCaption]:
        captions: list[ShotCaption] = []
        batch: list[tuple[int, Interval, list[Path]]] = []
        for number, (interval, frames) in enumerate(shots, 1):
            frames = frames[: self.frames_per_call]
            if batch and sum(len(f) for _, _, f in batch) + len(frames) > self.frames_per_call:
                captions += self._call(batch)
                batch = []
            batch.append((number, interval, frames))
        if batch:
            captions += self._call(batch)
        return captions

    def _call(self, batch: list[tuple[int, Interval, list[Path]]]) -> list[ShotCaption]:
        messages = prompts.vision_messages([(n, i.start, i.end, [data_uri(f) for f in frames])
                                            for n, i, frames in batch])
        try:
            answer = parse_json(self.chat.complete(messages), prompts.VisionAnswer)
        except ProviderAuthError:
            raise
        except (ValueError, ProviderError) as exc:
            self.failures.append(str(exc))
            log.warning("vision %s: shots %s left uncaptioned: %s", self.name, [n for n, _, _ in batch], exc)
            return []
        by_number = {s.shot: s for s in answer.shots}
        return [ShotCaption(start=i.start, end=i.end, caption=by_number[n].caption.strip(),
                            tags=by_number[n].tags[:8]) for n, i, _ in batch if n in by_number]
