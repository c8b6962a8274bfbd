"""The swappable brains. Each stage has one small interface; DashScope, OpenAI-compatible and local
implementations plug in behind it."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from autoclip.models import (Interval, Selection, SelectionRequest, ShotCaption, Theme, Transcript,
                             Usage, VideoDigest)


@runtime_checkable
class SpeechRecognizer(Protocol):
    name: str

    def transcribe(self, wav: Path, language: str | None = None) -> Transcript:
        """Sentences with word times for a 16 kHz mono WAV."""


@runtime_checkable
class VisionDescriber(Protocol):
    name: str

    def describe(self, shots: list[tuple[Interval, list[Path]]]) -> list[ShotCaption]:
        """A caption and tags per shot from its sampled frames (JPEG files)."""


@runtime_checkable
class LanguageModel(Protocol):
    provider: str
    model: str
    heuristic: bool

    def theme(self, digests: list[VideoDigest]) -> tuple[Theme, dict[str, Usage]]:
        """Pass 1: what the set of videos is about (and the usage per model)."""

    def select(self, request: SelectionRequest) -> tuple[Selection, dict[str, Usage]]:
        """Pass 2: which numbered candidates tell the theme best within the budget, in order."""
