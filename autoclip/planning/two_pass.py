"""Pass 1 (theme) then pass 2 (selection by segment id), validated; a failed or empty answer falls back to
the heuristic planner loudly (recorded in the plan), and zero clips is an error with a reason."""

from __future__ import annotations

from autoclip.errors import PlanError, ProviderError
from autoclip.models import (Candidate, EditPlan, PlannerInfo, Rejection, Selection, SelectionRequest,
                             SourceVideo, Theme, Usage, VideoAnalysis, VideoDigest)
from autoclip.planning.segments import digest, number_candidates
from autoclip.planning.timeline import build_clips
from autoclip.providers.base import LanguageModel
from autoclip.providers.local import HeuristicPlanner


def selection_problems(selection: Selection, candidates: dict[int, Candidate], budget: float) -> list[str]:
    """What is wrong with a pass-2 answer, in words a model can act on; empty when it is usable."""
    problems = []
    ids = [p.segment_id for p in selection.picks]
    if not ids:
        problems.append("the selection is empty; pick at least one segment id")
    unknown = sorted({i for i in ids if i not in candidates})
    if unknown:
        problems.append(f"unknown segment ids {unknown}; use only ids from the list")
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"segment ids {dupes} are picked more than once")
    total = sum(candidates[i].duration for i in set(ids) if i in candidates)
    if total > budget * 1.5 + 5:
        problems.append(f"the picks last {total:.0f} s, far over the {budget:.0f} s budget")
    return problems


def decide_theme(model: LanguageModel, digests: list[VideoDigest]) -> tuple[Theme, PlannerInfo]:
    info = PlannerInfo(provider=model.provider, model=model.model, heuristic=model.heuristic)
    try:
        theme, usage = model.theme(digests)
    except ProviderError as exc:
        fallback = HeuristicPlanner()
        theme, usage = fallback.theme(digests)
        info.notes.append(f"pass 1 fell back to the heuristic planner: {exc}")
    info.usage = Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
    return theme, info


def plan_edit(pairs: list[tuple[SourceVideo, VideoAnalysis]], theme: Theme, info: PlannerInfo,
              model: LanguageModel, *, target: float, min_clip: float, max_clip: float,
              rejected: list[Rejection] | None = None) -> EditPlan:
    """Pass 2 and the timeline: the whole edit decision for the analysed videos."""
    candidates = number_candidates(pairs, min_len=min_clip, max_len=max_clip)
    if not candidates:
        raise PlanError("no candidate moments in any video (every video is empty or unreadable)")
    by_id = {c.id: c for c in candidates}
    request = SelectionRequest(theme=theme, candidates=candidates, target_duration=target,
                               videos=[digest(v, a) for v, a in pairs], min_clip=min_clip)
    problems: list[str] = []
    try:
        selection, usage = model.select(request)
        info.usage.input_tokens += usage.input_tokens
        info.usage.output_tokens += usage.output_tokens
        problems = selection_problems(selection, by_id, target)
    except ProviderError as exc:
        problems = [str(exc)]
    if problems:
        if model.heuristic:
            raise PlanError("the heuristic planner found nothing to pick: " + "; ".join(problems))
        info.notes.append("pass 2 fell back to the heuristic planner: " + "; ".join(problems))
        info.heuristic = True
        selection, _ = HeuristicPlanner().select(request)
    videos = {v.index: (v, a) for v, a in pairs}
    clips = build_clips(selection.picks, by_id, videos, target, min_clip)
    if not clips:
        raise PlanError("every picked segment was shorter than a usable clip")
    return EditPlan(theme=theme, clips=clips, target_duration=target, planner=info,
                    candidates=len(candidates), rejected=list(rejected or []))
