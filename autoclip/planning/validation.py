"""What is wrong with a model's answer, in words the model can act on in a repair round."""

from __future__ import annotations

from autoclip.models import Candidate, Selection
from autoclip.planning.timeline import shortest_length


def over_budget_limit(budget: float) -> float:
    """Seconds of picks beyond which an answer is refused: the timeline then drops whole clips, which a
    model should decide itself."""
    return budget * 1.5 + 5


def selection_problems(selection: Selection, candidates: dict[int, Candidate], budget: float,
                       min_clip: float = 1.5) -> list[str]:
    """Empty when the pass-2 answer is usable. Picks are measured at the length the timeline may shorten
    them to (timeline.shortest_length): footage picked whole from several short videos is not refused."""
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
    # one pick of any length is usable (the timeline shortens it at a pause); several must roughly fit
    picked = set(ids)
    total = sum(shortest_length(candidates[i].kind, candidates[i].duration, min_clip)
                for i in picked if i in candidates)
    if len(picked) > 1 and total > over_budget_limit(budget):
        problems.append(f"the picks last {total:.0f} s, far over the {budget:.0f} s budget; pick fewer or "
                        f"shorter segments (several sources may have to be left out)")
    return problems
