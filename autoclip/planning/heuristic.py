"""The offline planner: pass 1 and pass 2 without a language model.

It needs no account or network, so a new user gets a reel in minutes; it says in its output that no
language model was used, and each pick's reason names what scored.
"""

from __future__ import annotations

import collections
import re

from autoclip.models import Candidate, Pick, Selection, SelectionRequest, Theme, Usage, VideoDigest

_STOPWORDS = set("""a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for from further
had has have having he her here hers him his how i if in into is it its itself just let like me more most
my no nor not now of off on once only or other our ours out over own really right same she should so some
such than that the their theirs them then there these they this those through to too under until up very
was we well were what when where which while who whom why will with would yeah you your yours okay going
get got gonna know think thing things one two want yes oh um uh""".split())


def keywords(texts: list[str], limit: int = 5) -> list[str]:
    counts = collections.Counter(
        w for text in texts for w in re.findall(r"[^\W\d_]{4,}", text.lower()) if w not in _STOPWORDS)
    return [w for w, n in counts.most_common(limit) if n > 1] or [w for w, _ in counts.most_common(limit)]


class HeuristicPlanner:
    """Pass 1 and pass 2 without a language model: frequent words for the theme; loud, voiced, lively,
    on-theme moments for the selection, with every source that has material represented."""

    provider = "local"
    model = "heuristic"
    heuristic = True

    def theme(self, digests: list[VideoDigest]) -> tuple[Theme, dict[str, Usage]]:
        words = keywords([d.transcript_excerpt for d in digests] + [c for d in digests for c in d.captions])
        names = ", ".join(d.name for d in digests)
        title = ("Highlights: " + ", ".join(words[:3])) if words else f"Highlights from {len(digests)} videos"
        summary = (f"Heuristic planner (offline, no language model): theme from the most frequent words "
                   f"spoken in {names}." if words else
                   f"Heuristic planner (offline, no language model): no speech to read, so the liveliest "
                   f"and loudest moments of {names} are chosen.")
        return Theme(title=title, summary=summary, keywords=words), {}

    def select(self, request: SelectionRequest) -> tuple[Selection, dict[str, Usage]]:
        scores = {c.id: self.score(c, request.theme.keywords) for c in request.candidates}
        by_video: dict[int, list[Candidate]] = collections.defaultdict(list)
        for cand in request.candidates:
            if cand.duration >= min(request.min_clip, 1.0):
                by_video[cand.video_index].append(cand)
        chosen: dict[int, Candidate] = {}
        total = 0.0
        budget = request.target_duration
        # round robin over the videos, each offering its best remaining moment, so every source with
        # material is represented and no single video fills the reel; neighbours of a chosen moment wait
        # for a later round so the reel does not play one long stretch
        queues = {v: sorted(cands, key=lambda c: -scores[c.id]) for v, cands in by_video.items()}
        for relaxed in (False, True):
            progress = True
            while progress and total < budget:
                progress = False
                offers = []
                for video, queue in queues.items():
                    for cand in queue:
                        if cand.id in chosen:
                            continue
                        if not relaxed and any(c.video_index == video and c.start - 1.0 <= cand.end
                                               and cand.start <= c.end + 1.0 for c in chosen.values()):
                            continue
                        offers.append(cand)
                        break
                first_round = not chosen and len(offers) * request.min_clip <= budget
                for cand in sorted(offers, key=lambda c: -scores[c.id]):
                    remaining = budget - total
                    if remaining <= 0 and not first_round:
                        break  # (the first round takes one moment per video; the timeline trims)
                    if not first_round and cand.duration > remaining + 1.0 and remaining < request.min_clip:
                        continue  # it would be cut below a useful length; try shorter ones
                    chosen[cand.id] = cand
                    total += cand.duration
                    progress = True
        picks = [Pick(segment_id=c.id, reason=self.reason(c, request.theme.keywords))
                 for c in sorted(chosen.values(), key=lambda c: (c.video_index, c.start))]
        return Selection(picks=picks), {}

    @staticmethod
    def score(cand: Candidate, theme_words: list[str]) -> float:
        loud = min(1.0, max(0.0, (cand.loudness_db + 50.0) / 40.0))
        on_theme = sum(1 for w in theme_words if w in cand.text.lower())
        return (loud + cand.speech_ratio + min(1.0, cand.activity * 10) + 0.3 * min(cand.shot_cuts, 3)
                + 0.4 * on_theme)

    @staticmethod
    def reason(cand: Candidate, theme_words: list[str]) -> str:
        parts = []
        hits = [w for w in theme_words if w in cand.text.lower()]
        if hits:
            parts.append("mentions " + ", ".join(hits[:3]))
        if cand.speech_ratio > 0.5:
            parts.append("continuous speech" if cand.text else "sustained sound")
        if cand.shot_cuts:
            parts.append(f"{cand.shot_cuts} shot change{'s' if cand.shot_cuts > 1 else ''}")
        if cand.activity > 0.05:
            parts.append("lively picture")
        parts.append(f"level {cand.loudness_db:.0f} dBFS" if cand.loudness_db > -90 else "no audio")
        return "heuristic: " + "; ".join(parts)
