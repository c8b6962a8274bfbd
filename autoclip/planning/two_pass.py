"""Pass 1 (theme) then pass 2 (selection by segment id), validated; a failed or empty answer falls back to
the heuristic planner loudly (recorded in the plan), and zero clips is an error with a reason."""

from __future__ import annotations

from autoclip.errors import PlanError, ProviderAuthError, ProviderError
from autoclip.models import (EditPlan, PlannerInfo, Rejection, SelectionRequest, SourceVideo, Theme, Usage,
                             VideoAnalysis, VideoDigest, add_usage)
from autoclip.planning.segments import digest, number_candidates
from autoclip.planning.timeline import build_clips
from autoclip.planning.validation import selection_problems
from autoclip.planning.base import LanguageModel
from autoclip.planning.heuristic import HeuristicPlanner


def _spent(model: LanguageModel) -> dict[str, Usage]:
    """What a model's calls cost so far (a pass that fell back was billed too)."""
    spent = getattr(model, "spent", None)
    return {name: used.model_copy() for name, used in spent().items()} if spent else {}


def _since(model: LanguageModel, before: dict[str, Usage]) -> dict[str, Usage]:
    out = {}
    for name, now in _spent(model).items():
        was = before.get(name, Usage())
        out[name] = Usage(input_tokens=now.input_tokens - was.input_tokens,
                          output_tokens=now.output_tokens - was.output_tokens, calls=now.calls - was.calls,
                          cached_calls=now.cached_calls - was.cached_calls)
    return out


def decide_theme(model: LanguageModel, digests: list[VideoDigest]) -> tuple[Theme, PlannerInfo]:
    info = PlannerInfo(provider=model.provider, model=model.model, heuristic=model.heuristic)
    before = _spent(model)
    try:
        theme, usage = model.theme(digests)
        info.usage = add_usage(info.usage, usage)
    except ProviderAuthError:
        raise
    except ProviderError as exc:
        info.usage = add_usage(info.usage, _since(model, before))
        theme, _ = HeuristicPlanner().theme(digests)
        info.notes.append(f"pass 1 fell back to the heuristic planner: {exc}")
    return theme, info


def analysis_notes(pairs: list[tuple[SourceVideo, VideoAnalysis]]) -> list[str]:
    """Each analysis's fallbacks and degradations, named by source: the plan's notes start with them."""
    return [f"{video.name}: {note}" for video, analysis in pairs for note in analysis.notes]


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
    info.notes = [n for n in analysis_notes(pairs) if n not in info.notes] + info.notes
    before = _spent(model)
    try:
        selection, usage = model.select(request)
        info.usage = add_usage(info.usage, usage)
        problems = selection_problems(selection, by_id, target, min_clip)
    except ProviderAuthError:
        raise
    except ProviderError as exc:
        info.usage = add_usage(info.usage, _since(model, before))
        problems = [str(exc)]
    if problems:
        if model.heuristic:
            raise PlanError("the heuristic planner found nothing to pick: " + "; ".join(problems))
        info.notes.append("pass 2 fell back to the heuristic planner: " + "; ".join(problems))
        info.heuristic = True
        selection, _ = HeuristicPlanner().select(request)
    info.notes += [n for n in selection.notes if n not in info.notes]
    videos = {v.index: (v, a) for v, a in pairs}
    clips = build_clips(selection.picks, by_id, videos, target, min_clip)
    if not clips:
        raise PlanError("every picked segment was shorter than a usable clip")
    return EditPlan(theme=theme, clips=clips, target_duration=target, planner=info,
                    candidates=len(candidates), rejected=list(rejected or []))
