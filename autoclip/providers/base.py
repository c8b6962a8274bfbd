"""The swappable analysers. Each stage has one small interface; DashScope, OpenAI-compatible and local
implementations plug in behind it. (The planner's interface is planning/base.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from autoclip.models import Interval, ShotCaption, Transcript


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
