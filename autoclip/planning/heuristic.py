"""The offline planner: pass 1 and pass 2 without a language model.

It needs no account or network, so a new user gets a reel in minutes. It judges the way an editor would
with the facts at hand: what the videos talk about in common (terms shared by several sources, stop words
and numerals out, whole-word matches, Chinese segmented), which moments are events (a crowd reacting, a burst
of cuts), and which are filler (off-topic talk, silence, test tones). Every feature is normalised within the
job, near-duplicate moments are avoided, every source with material is represented when the budget allows
and, when it does not, the plan says which sources were left out. Each pick's reason names what scored.
"""

from __future__ import annotations

import collections
import math

from autoclip.models import Candidate, Pick, Selection, SelectionRequest, Theme, Usage, VideoDigest
from autoclip.planning import meaning as by_meaning
from autoclip.planning.knapsack import best_fit
from autoclip.planning.segments import EVENT_KINDS
from autoclip.planning.timeline import EDGE_GUARD, MERGE_GAP, PAD, shortest_length
from autoclip.planning.validation import selection_problems
from autoclip.text import is_cjk, terms

_STOPWORDS = set("""a about above after again against all also am an and any are as at be because been
before being below between both but by can could did do does doing don done down during each even every few
for from further get gets getting go goes going gonna got had has have having he her here hers him his how
i if in into is it its itself just know let like look lot make me more most much my need no nor not now of
off on once one only or other our ours out over own really right said same say see she should so some
something such sure take than that the their theirs them then there these they thing things think this
those through time to today too two under until up us very want was way we well were what when where which
while who whom why will with would yeah yes you your yours okay ok oh um uh hmm mm actually maybe still
back come came first last next new good great thank thanks please here's there's it's that's i'm we're
you're they're let's can't don't didn't isn't wasn't won't i've we've you've i'll we'll hello hi
我们 你们 他们 她们 它们 这个 那个 这些 那些 这样 那样 什么 怎么 为什么 因为 所以 但是 而且 然后 还是 或者
如果 就是 不是 没有 可以 一个 一些 已经 现在 今天 大家 自己 知道 觉得 还有 这里 那里 时候 一下 一点 非常
真的 其实 可能 应该 需要 已经 这么 那么 只是 一样 比较 起来 出来 进行 以及 对于 关于 通过""".split())
_CJK_NUMERALS = set("零一二三四五六七八九十百千万亿两几第")

ON_TOPIC = 0.25  # a sentence this close to the job's most on-theme one (0-1) is on topic
NEAR_DUPLICATE = 0.7  # term overlap (Jaccard) above which two spoken moments say the same thing
KIND_BASE = {"speech": 0.3, "sound_event": 0.85, "visual_event": 0.6, "footage": 0.15, "quiet": 0.02}
FILLER = 0.3  # below this a moment is filler (off-topic talk, plain footage, quiet) ...
FILL_SHARE = 0.9  # ... used only when better moments cannot fill this share of the budget
SLACK = 0.02  # seconds per pick kept free for rounding (the timeline's pads and guards are in the weights)
MEANING_SPREAD = 0.1  # a job's sentences closer in meaning than this (cosine range) are judged by words alone


def content_terms(text: str) -> list[str]:
    """Terms that can carry a theme: no stop words, no numerals, no one-letter Latin or one-character CJK."""
    out = []
    for term in terms(text):
        if term in _STOPWORDS or any(ch.isdigit() for ch in term) or all(ch in _CJK_NUMERALS for ch in term):
            continue
        if (is_cjk(term[0]) and len(term) < 2) or (not is_cjk(term[0]) and len(term) < 3):
            continue
        out.append(term if is_cjk(term[0]) else _singular(term))
    return out


def _singular(word: str) -> str:
    """A crude English stem, the same for every text, so 'robots', 'robot's' and 'robot' match."""
    for tail in ("'s", "’s"):
        if word.endswith(tail):
            word = word[: -len(tail)]
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    return word


def term_weights(texts_by_source: list[str]) -> dict[str, float]:
    """Theme weight per term, 0-1. Across several sources a term counts by how many sources say it (a term
    only one source says is that source's small talk); with one source, by how often it recurs."""
    per_source = [collections.Counter(content_terms(t)) for t in texts_by_source]
    per_source = [c for c in per_source if c]
    if not per_source:
        return {}
    df: collections.Counter = collections.Counter(t for c in per_source for t in c)
    tf: collections.Counter = sum(per_source, collections.Counter())
    n = len(per_source)
    if n > 1 and any(v > 1 for v in df.values()):
        raw = {t: (df[t] - 1) / (n - 1) * (1 + math.log(tf[t])) for t in df if df[t] > 1}
    else:
        raw = {t: math.log(tf[t]) for t in tf if tf[t] > 1} or {t: 1.0 for t in tf}
    top = max(raw.values()) or 1.0
    return {t: v / top for t, v in raw.items()}


def keywords(texts: list[str], limit: int = 8) -> list[str]:
    """The strongest theme terms of texts (one text per source)."""
    weights = term_weights(texts)
    return [t for t, _ in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


class HeuristicPlanner:
    """Pass 1 and pass 2 without a language model (see the module docstring)."""

    provider = "local"
    model = "heuristic"
    heuristic = True

    def __init__(self, meaning: bool | None = None):
        """meaning: judge talk by meaning too (planning/meaning.py); None follows AUTOCLIP_JUDGE ('auto':
        when the `judge` extra is installed). Without the extra it is off whatever is asked."""
        if meaning is None:
            from autoclip.config import get_settings

            meaning = by_meaning.wanted(get_settings().judge)
        self.meaning = bool(meaning) and by_meaning.available()

    def theme(self, digests: list[VideoDigest]) -> tuple[Theme, dict[str, Usage]]:
        texts = [d.transcript_excerpt + " " + " ".join(d.captions) for d in digests]
        words = keywords(texts)
        if _mostly_chinese(texts):  # a Chinese event gets a Chinese title, led by its Chinese terms
            words = sorted(words, key=lambda w: not is_cjk(w[0]))
            names = "、".join(d.name for d in digests)
            title = ("精彩集锦：" + "、".join(words[:3])) if words else f"{len(digests)} 段视频的精彩集锦"
            also = f"；同时按语义判断讲话内容（{by_meaning.MODEL}）" if self.meaning else ""
            summary = (f"离线启发式规划（未使用大模型）：主题取自 {names} 中多段视频都提到的词{also}。" if words else
                       f"离线启发式规划（未使用大模型）：没有可读的语音，因此选取 {names} 中的事件（声音爆发、"
                       "剪切、运动）和最生动的时刻。")
            return Theme(title=title, summary=summary, keywords=words), {}
        names = ", ".join(d.name for d in digests)
        also = f"; talk judged by meaning too ({by_meaning.MODEL})" if self.meaning else ""
        title = ("Highlights: " + ", ".join(words[:3])) if words else f"Highlights from {len(digests)} videos"
        summary = (f"Heuristic planner (offline, no language model): theme from the terms spoken in several of "
                   f"{names}{also}." if words else
                   f"Heuristic planner (offline, no language model): no speech to read, so events (sound "
                   f"bursts, cuts, motion) and the liveliest moments of {names} are chosen.")
        return Theme(title=title, summary=summary, keywords=words), {}

    # ------------------------------------------------------------ scoring

    def judge(self, request: SelectionRequest) -> dict[int, tuple[float, str]]:
        """Score (value per second, 0-1) and reason for every candidate, normalised within the job."""
        cands = request.candidates
        by_video: dict[int, list[str]] = collections.defaultdict(list)
        for c in cands:
            if c.kind == "speech" and c.text:
                by_video[c.video_index].append(c.text)
        weights = term_weights([" ".join(v) for v in by_video.values()])
        for keyword in request.theme.keywords:  # a theme from pass 1 (a model's, perhaps) counts too
            for t in content_terms(keyword):
                weights[t] = max(weights.get(t, 0.0), 0.5)
        sources = collections.Counter(t for v in by_video.values() for t in set(content_terms(" ".join(v))))
        raw_theme = {}
        for c in cands:
            found = set(content_terms(c.text)) if c.text else set()
            raw_theme[c.id] = sum(weights.get(t, 0.0) for t in found) / math.sqrt(max(1, len(found)))
        top_theme = max(raw_theme.values(), default=0.0) or 1.0
        audible = sorted(c.loudness_db for c in cands if c.loudness_db > -90 and c.kind != "quiet")
        top_activity = max((c.activity for c in cands), default=0.0) or 1.0
        meaning = self._meaning(request, {i: v / top_theme for i, v in raw_theme.items()})

        def level_rank(db: float) -> float:
            if not audible or db <= -90:
                return 0.0
            below = sum(1 for v in audible if v <= db)
            return below / len(audible)

        judged: dict[int, tuple[float, str]] = {}
        has_words = bool(weights) or bool(meaning)
        for c in cands:
            theme = raw_theme[c.id] / top_theme
            level = level_rank(c.loudness_db)
            motion = c.activity / top_activity
            parts: list[str] = []
            if c.kind == "speech" and has_words and c.text:
                if c.id in meaning:  # words and meaning weigh alike where the talk shares theme terms;
                    # where it shares none, the words have no evidence either way and meaning judges alone
                    similarity, near = meaning[c.id]
                    theme = (theme + near) / 2 if theme > 0 else near
                # on-topic and off-topic talk kept apart: a clear step between them, then by strength
                score = (0.55 if theme >= ON_TOPIC else 0.1) + 0.4 * theme
                hits = sorted((t for t in set(content_terms(c.text)) if weights.get(t, 0) >= 0.2),
                              key=lambda t: -weights[t])[:3]
                if hits:
                    shared = max(sources[t] for t in hits)
                    parts.append(f"on theme: {', '.join(hits)}" +
                                 (f" (said in {shared} sources)" if shared > 1 else ""))
                if c.id in meaning:
                    parts.append(f"close in meaning to the theme ({similarity:.2f})" if theme >= ON_TOPIC else
                                 f"off-topic speech: far in meaning from the theme ({similarity:.2f})")
                elif not hits:
                    parts.append("off-topic speech (no theme terms)")
            elif c.kind == "speech":
                score = KIND_BASE["speech"] + 0.3 * level + 0.1 * motion
                parts.append(c.detail or "speech")
            else:
                score = KIND_BASE.get(c.kind, 0.2)
                if c.kind == "sound_event":
                    score += 0.15 * level
                elif c.kind == "visual_event":
                    score += 0.2 * motion + 0.05 * min(c.shot_cuts, 3)
                elif c.kind == "footage":
                    score += 0.1 * motion
                parts.append(c.kind.replace("_", " ") + (f": {c.detail}" if c.detail else ""))
            if c.kind != "quiet":
                parts.append(f"level {c.loudness_db:.0f} dBFS" if c.loudness_db > -90 else "no audio")
            judged[c.id] = (round(min(1.0, score), 4), "heuristic: " + "; ".join(parts))
        return judged

    def _meaning(self, request: SelectionRequest, by_words: dict[int, float]) -> dict[int, tuple[float, float]]:
        """Per speech candidate: its similarity to the theme in meaning (the centre of the talk, weighted by
        the word judge's theme strength, 0-1), and that similarity scaled to 0-1 within the job. Empty when
        off, or when the model cannot tell the job's sentences apart."""
        spoken = [c for c in request.candidates if c.kind == "speech" and c.text.strip()]
        if not self.meaning or len(spoken) < 2:
            return {}
        similarity = by_meaning.theme_similarity([c.text for c in spoken], [by_words[c.id] for c in spoken])
        low, top = min(similarity), max(similarity)
        if top - low < MEANING_SPREAD:
            return {}
        return {c.id: (s, (s - low) / (top - low)) for c, s in zip(spoken, similarity)}

    # ------------------------------------------------------------ selection

    def select(self, request: SelectionRequest) -> tuple[Selection, dict[str, Usage]]:
        judged = self.judge(request)
        score = {i: s for i, (s, _) in judged.items()}
        budget = request.target_duration
        usable = [c for c in request.candidates if c.duration >= min(request.min_clip, 1.0)] or request.candidates
        by_video: dict[int, list[Candidate]] = collections.defaultdict(list)
        for c in usable:
            by_video[c.video_index].append(c)
        names = {v.video_index: v.name for v in request.videos}
        chosen: list[Candidate] = []
        notes: list[str] = []

        def weight(c: Candidate) -> float:
            """Seconds it takes in the reel, pads aside (the timeline gives pads back first when short). An
            event counts at the length the timeline may shorten it to: it plays whole when there is room."""
            return elastic(c, request.min_clip) + SLACK

        def value(c: Candidate) -> float:
            """Moments count (an editor's reel is a set of moments); seconds only break ties."""
            return score[c.id] * (1 + 0.05 * c.duration)

        terms_of = {c.id: frozenset(content_terms(c.text)) if c.text else frozenset() for c in request.candidates}

        def clashes(c: Candidate) -> bool:
            return any(o.video_index == c.video_index and o.start < c.end and c.start < o.end for o in chosen) \
                or any(_near_duplicate(c, o, terms_of) for o in chosen)

        # 1. one moment per source with material, best sources first, while the budget holds them; a moment
        # without speech may be cut anywhere, so it is planned at a fair share of the budget at most
        best = {v: max(cs, key=lambda c: (score[c.id], -c.duration)) for v, cs in by_video.items()}
        with_material = [v for v, cs in by_video.items() if any(c.kind != "quiet" for c in cs)] or list(best)
        without = sorted(set(best) - set(with_material))
        share = max(request.min_clip, budget / max(1, len(with_material)))
        planned: dict[int, float] = {}

        def first_weight(c: Candidate) -> float:
            return weight(c) if c.kind == "speech" else min(weight(c), share)

        left_out = []
        for video in sorted(with_material, key=lambda v: -score[best[v].id]):
            room = budget - sum(planned.values())
            # filler (off-topic talk, plain footage) stands for a source only when it has nothing better
            floor = FILLER if score[best[video].id] >= FILLER else 0.0
            fitting = [c for c in by_video[video] if first_weight(c) <= room + 1e-9 and score[c.id] >= floor
                       and (c.kind != "quiet" or all(x.kind == "quiet" for x in by_video[video]))
                       and not clashes(c)]
            fair = [c for c in fitting if first_weight(c) <= share + 1e-9]
            fitting = fair or fitting  # a short budget shared by many sources: a moment that leaves room
            if not fitting and not chosen:  # nothing fits at all: the best moment, shortened at a pause
                fitting = [best[video]]
            if fitting:
                pick = max(fitting, key=lambda c: (score[c.id], -c.duration))
                chosen.append(pick)
                planned[pick.id] = min(first_weight(pick), budget)
            else:
                left_out.append(video)
        if left_out:
            kept = len(with_material) - len(left_out)
            notes.append(f"left out {', '.join(names.get(v, str(v)) for v in left_out)}: the {budget:.0f} s "
                         f"budget holds a moment from only {kept} of {len(with_material)} sources with material "
                         f"(the strongest moments were kept)")
        if without and with_material != list(best):
            notes.append(f"left out {', '.join(names.get(v, str(v)) for v in without)}: nothing but silence "
                         f"or a steady tone over a still picture")
        # 2. the rest of the budget: the most valuable set of whole moments (a knapsack), filler only when
        # the good moments cannot fill most of the budget
        # silence and test cards never fill a reel: they play only for a source that has nothing else (1.)
        rounds = [lambda c: score[c.id] >= FILLER, lambda c: c.kind != "quiet"]
        for _attempt in range(8):
            for k, admits in enumerate(rounds):  # good moments; then filler
                # good moments may shorten events to fit; filler only fills what they leave played whole
                room = budget - sum(planned.get(c.id, weight(c)) if not k else c.duration + SLACK for c in chosen)
                if k and budget - room >= FILL_SHARE * budget:
                    break
                for attempt in range(20):
                    taken = {c.id for c in chosen}
                    pool = [c for c in usable if c.id not in taken and admits(c) and not clashes(c)]
                    picked = _knapsack(pool, room, value, weight)
                    clash = _first_clash(picked, score, terms_of)
                    if clash is not None:
                        usable = [c for c in usable if c.id != clash.id]  # the weaker of two overlapping goes
                        continue
                    # neighbours of one video play the pause between them: plan again in the room left
                    over = _reel_length(chosen + picked, planned, request.min_clip) - budget
                    if not k and picked and over > 1e-6 and attempt < 19:
                        room = min(room, sum(weight(c) for c in picked)) - over - 1e-3  # a set that differs
                        if room > 0:
                            continue
                    chosen += picked  # (what still overflows goes in step 3)
                    break
            # 3. picks of one video played as one clip also play the pause between them: what overflows
            # goes, weakest first (never a source's only moment), and the room it leaves is filled again
            if len(chosen) <= 1 or _reel_length(chosen, planned, request.min_clip) <= budget + 1e-6:
                break
            counts = collections.Counter(c.video_index for c in chosen)
            spare = [c for c in chosen if counts[c.video_index] > 1] or chosen
            weakest = min(spare, key=lambda c: (score[c.id], -c.duration))
            chosen.remove(weakest)
            usable = [c for c in usable if c.id != weakest.id]
        while len(chosen) > 1 and _reel_length(chosen, planned, request.min_clip) > budget + 1e-6:
            counts = collections.Counter(c.video_index for c in chosen)
            spare = [c for c in chosen if counts[c.video_index] > 1] or chosen
            chosen.remove(min(spare, key=lambda c: (score[c.id], -c.duration)))
        # 4. the planner and validation agree: what validation would refuse is never proposed
        by_id = {c.id: c for c in request.candidates}
        while len(chosen) > 1 and selection_problems(Selection(picks=[Pick(segment_id=c.id) for c in chosen]),
                                                     by_id, budget, request.min_clip):
            weakest = min(chosen, key=lambda c: (score[c.id], -c.duration))
            chosen.remove(weakest)
            notes.append(f"dropped a moment of {names.get(weakest.video_index, weakest.video_index)} "
                         f"to stay within the budget")
        picks = [Pick(segment_id=c.id, reason=judged[c.id][1])
                 for c in sorted(chosen, key=lambda c: (c.video_index, c.start))]
        return Selection(picks=picks, notes=notes), {}


def elastic(c: Candidate, min_clip: float) -> float:
    """The seconds a moment must have in the reel: an event (sound or picture) may lose its end
    (timeline.EVENT_KEEP), anything else plays whole; and the guard the timeline keeps at its edges."""
    if c.kind in EVENT_KINDS:
        return shortest_length(c.kind, c.duration, min_clip) + EDGE_GUARD
    return c.duration + (2 * EDGE_GUARD if c.kind == "speech" else 0.0)


def _reel_length(chosen: list[Candidate], planned: dict[int, float], min_clip: float) -> float:
    """The picks' length once the timeline joins neighbours of one video: the pause between them plays.
    A moment planned shorter (footage the timeline may cut anywhere) counts as planned."""
    total = 0.0
    by_video: dict[int, list[Candidate]] = collections.defaultdict(list)
    for c in chosen:
        by_video[c.video_index].append(c)
    for picks in by_video.values():
        picks.sort(key=lambda c: c.start)
        total += sum(planned.get(c.id, elastic(c, min_clip)) for c in picks)
        total += sum(max(0.0, b.start - a.end - 2 * EDGE_GUARD) for a, b in zip(picks, picks[1:])  # guards
                     if 0 < b.start - a.end <= MERGE_GAP + 2 * PAD)  # inside the pause are counted already
    return total


def _near_duplicate(a: Candidate, b: Candidate, terms_of: dict[int, frozenset[str]]) -> bool:
    """Whether two spoken moments say the same thing (term overlap); terms_of: each candidate's terms."""
    ta, tb = terms_of[a.id], terms_of[b.id]
    if a.id == b.id or len(ta) < 3 or len(tb) < 3:
        return False
    return len(ta & tb) / len(ta | tb) >= NEAR_DUPLICATE


def _first_clash(picked: list[Candidate], score: dict[int, float],
                 terms_of: dict[int, frozenset[str]]) -> Candidate | None:
    """The weaker of the first pair of picks that overlap or repeat each other, if any."""
    for i, a in enumerate(picked):
        for b in picked[i + 1:]:
            if (a.video_index == b.video_index and a.start < b.end and b.start < a.end) or \
                    _near_duplicate(a, b, terms_of):
                return b if (score[b.id], b.duration) <= (score[a.id], a.duration) else a
    return None


def _knapsack(items: list[Candidate], capacity: float, value, weight) -> list[Candidate]:
    """The most valuable set of whole moments whose lengths fit in `capacity`."""
    chosen = best_fit([weight(c) for c in items], [value(c) for c in items], capacity, resolution=None)
    return [items[k] for k in reversed(chosen)]


def _mostly_chinese(texts: list[str]) -> bool:
    """Whether the words spoken are mostly Chinese: more CJK characters than letters of other scripts
    divided by four (about one Chinese character carries what four Latin letters do)."""
    cjk = sum(1 for t in texts for ch in t if is_cjk(ch))
    latin = sum(1 for t in texts for ch in t if ch.isalpha() and not is_cjk(ch))
    return cjk > 0 and cjk * 4 >= latin
