"""The planner's interface: pass 1 (theme) and pass 2 (selection by candidate id). The heuristic planner
(planning/heuristic.py) and the language-model planner (planning/llm.py) implement it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from autoclip.models import Selection, SelectionRequest, Theme, Usage, VideoDigest


@runtime_checkable
class LanguageModel(Protocol):
    provider: str
    model: str
    heuristic: bool

    def theme(self, digests: list[VideoDigest]) -> tuple[Theme, dict[str, Usage]]:
        """Pass 1: what the set of videos is about (and the usage per model)."""

    def select(self, request: SelectionRequest) -> tuple[Selection, dict[str, Usage]]:
        """Pass 2: which numbered candidates tell the theme best within the budget, in order."""
