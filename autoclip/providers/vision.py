"""What is on screen: shots batched into calls to a multimodal chat model (qwen-vl-plus or any
OpenAI-compatible vision model), a bounded number of frames per call, answers checked for shape."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

from pydantic import BaseModel, Field

from autoclip.errors import ProviderAuthError, ProviderError
from autoclip.models import Interval, ShotCaption, Usage
from autoclip.providers.chat import CachedChat, ContentRefused, parse_json

log = logging.getLogger("autoclip.providers")

VISION_SYSTEM = (
    "You describe what is on screen. For each shot, the frames sampled from it are given in order. "
    'Answer with one JSON object: {"shots": [{"shot": <number>, "caption": "<one sentence>", '
    '"tags": ["<tag>", ...]}]}, one entry per shot.')


class ShotAnswer(BaseModel):
    shot: int
    caption: str
    tags: list[str] = Field(default_factory=list)


class VisionAnswer(BaseModel):
    shots: list[ShotAnswer]


def _doc(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def vision_messages(shots: list[tuple[int, float, float, list[str]]]) -> list[dict]:
    """One multimodal user message: every shot's frames (data URIs) then the JSON task."""
    content: list[dict] = []
    rows = []
    for number, start, end, frames in shots:
        content += [{"image": uri} for uri in frames]
        rows.append({"shot": number, "start": round(start, 2), "end": round(end, 2), "frames": len(frames)})
    content.append({"text": _doc({"task": "describe", "instructions": VISION_SYSTEM, "shots": rows})})
    return [{"role": "user", "content": content}]


def data_uri(path: Path) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode()


class ChatVisionDescriber:
    """VisionDescriber on a multimodal chat backend: shots batched, a bounded number of frames per call."""

    def __init__(self, chat: CachedChat, frames_per_call: int = 8):
        self.chat = chat
        self.name = f"{chat.provider}:{chat.model}"
        self.frames_per_call = frames_per_call
        self.failures: list[str] = []
        self.retry_later = False  # a failure a later run may not meet (not a content refusal)

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
        messages = vision_messages([(n, i.start, i.end, [data_uri(f) for f in frames])
                                            for n, i, frames in batch])
        try:
            answer = self.chat.ask(messages, lambda text: parse_json(text, VisionAnswer))
        except ProviderAuthError:
            raise
        except (ValueError, ProviderError) as exc:  # e.g. 400 DataInspectionFailed: this batch only
            shots = [n for n, _, _ in batch]
            self.failures.append(f"shots {shots[0]}-{shots[-1]} left uncaptioned: {exc}")
            self.retry_later = self.retry_later or not isinstance(exc, ContentRefused)
            log.warning("vision %s: shots %s left uncaptioned: %s", self.name, shots, exc)
            return []
        by_number = {s.shot: s for s in answer.shots}
        return [ShotCaption(start=i.start, end=i.end, caption=by_number[n].caption.strip(),
                            tags=by_number[n].tags[:8]) for n, i, _ in batch if n in by_number]
