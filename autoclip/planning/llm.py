"""Pass 1 and pass 2 on a language model: the prompts, JSON answers validated with pydantic, one repair
round, and windows for long inputs. The chat model itself is a transport from providers/."""

from __future__ import annotations

import logging

from pydantic import BaseModel

from autoclip.config import Settings
from autoclip.errors import ProviderError
from autoclip.models import Candidate, Pick, Selection, SelectionRequest, Theme, Usage, VideoDigest
from autoclip.planning import prompts
from autoclip.planning.base import LanguageModel
from autoclip.planning.heuristic import HeuristicPlanner
from autoclip.planning.validation import selection_problems
from autoclip.providers import Secrets, chat_model
from autoclip.providers.chat import CachedChat, parse_json

log = logging.getLogger("autoclip.planning")


def language_model(settings: Settings, secrets: Secrets | None = None) -> LanguageModel:
    """qwen (or an OpenAI-compatible model) for pass 1 and 2; offline, the heuristic planner."""
    chat = chat_model(settings, secrets, "text")
    return ChatPlanner(chat, settings.selection_token_budget) if chat else HeuristicPlanner()


class InvalidAnswer(ValueError):
    """A well-formed answer that breaks the rules (unknown ids, over budget...)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class ChatPlanner:
    """LanguageModel (pass 1 and pass 2) on a chat backend."""

    heuristic = False

    def __init__(self, chat: CachedChat, token_budget: int = 12000):
        self.chat = chat
        self.provider, self.model = chat.provider, chat.model
        self.token_budget = token_budget

    def _ask(self, messages: list[dict], shape: type[BaseModel], check=None):
        """One answer, validated (only a valid one is cached); one repair round with the problems; then
        ProviderError. Every answer is counted in the usage, the invalid ones too."""
        seen: dict[str, str] = {}

        def accept(text: str):
            seen["text"] = text
            answer = parse_json(text, shape)
            problems = check(answer) if check else []
            if problems:
                raise InvalidAnswer(problems)
            return answer

        for attempt in (1, 2):
            try:
                return self.chat.ask(messages, accept)
            except InvalidAnswer as exc:
                problems = exc.problems
            except ValueError as exc:
                problems = [str(exc)]
            if attempt == 2:
                raise ProviderError(f"{self.provider} {self.model}: answer still invalid after one repair: "
                                    + "; ".join(problems))
            log.warning("%s %s: invalid answer (%s); asking once more", self.provider, self.model,
                        "; ".join(problems))
            messages = prompts.repair_messages(messages, seen.get("text", ""), problems)

    def spent(self) -> dict[str, Usage]:
        """Everything this planner's calls cost so far (also the calls of a pass that then fell back)."""
        return {self.model: self.chat.usage}

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
                                                        by_id, budget, request.min_clip))
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
