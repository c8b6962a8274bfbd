"""Turn picked candidate ids into clips that respect speech. Pure code: no I/O.

A clip starts before its first word and ends after its last, with a small pad held inside the surrounding
pause (never onto a touching word); a boundary that would fall inside a sentence moves to the sentence's
edge. Picks of one video that overlap or nearly touch become one clip, keeping each distinct reason once.
The budget is met by choosing whole clips (a knapsack), and a clip is only ever shortened at a pause.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from autoclip.errors import PlanError
from autoclip.models import Candidate, Clip, Interval, Pick, SourceVideo, VideoAnalysis
from autoclip.planning.knapsack import best_fit
from autoclip.planning.segments import Moment, pauses, sentences

PAD = 0.3  # breathing room before the first and after the last word, taken from the pause around it
EXTEND_INTO_SENTENCE = 3.0  # a boundary inside a sentence moves out to its edge when that is this close
MERGE_GAP = 0.6  # picks of one video closer than this play as one clip, pause included
MIN_CLIP = 0.5  # shorter than this is a flash, not a clip


@dataclass
class Guide:
    """Where a video may be cut: its sentences, real pauses and shot cuts."""

    limit: float
    sentences: list[Moment] = field(default_factory=list)
    pauses: list[Interval] = field(default_factory=list)
    shot_cuts: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, analysis: VideoAnalysis, limit: float | None = None) -> "Guide":
        return cls(limit=analysis.duration if limit is None else min(limit, analysis.duration),
                   sentences=sentences(analysis), pauses=pauses(analysis) if analysis.transcript else [],
                   shot_cuts=sorted(analysis.shot_cuts))

    def inside_sentence(self, t: float) -> Moment | None:
        for s in self.sentences:
            if s.start + 1e-3 < t < s.end - 1e-3:
                return s
        return None

    def pause_at(self, t: float) -> Interval | None:
        for p in self.pauses:
            if p.start - 1e-3 <= t <= p.end + 1e-3:
                return p
        return None

    def clean_start(self, t: float, end: float | None = None) -> float:
        """t moved out of any sentence, then padded back into the pause before it (half of it at most).
        A start far into a long sentence moves past it, unless that leaves nothing before `end` (the pick
        lies within the sentence): then it moves back to the sentence's start."""
        s = self.inside_sentence(t)
        if s:
            if t - s.start <= EXTEND_INTO_SENTENCE or (end is not None and s.end >= end - MIN_CLIP):
                t = s.start
            else:  # start after the sentence, clear of its last word (word ends are often given early)
                p = self.pause_at(s.end)
                return min(self.limit, s.end + min(PAD, (p.end - s.end) / 2 if p is not None else 0.0))
        p = self.pause_at(t)
        if p is not None and self.sentences:
            room = t - p.start if p.start > 0 else t
            new = t - min(PAD, room / 2 if p.start > 0 else room)
            before = self.inside_sentence(new)
            new = before.end if before else new
            cuts = [c for c in self.shot_cuts if new <= c <= t]
            t = cuts[-1] if cuts else new
        return max(0.0, t)

    def clean_end(self, t: float, start: float | None = None) -> float:
        """t moved out of any sentence, then padded into the pause after it. An end far before a long
        sentence's end moves back before the sentence, unless that leaves nothing after `start`: then it
        moves on to the sentence's end."""
        if t >= self.limit:  # the decodable end comes first
            return self.limit
        s = self.inside_sentence(t)
        if s:
            if s.end - t <= EXTEND_INTO_SENTENCE or (start is not None and s.start <= start + MIN_CLIP):
                t = s.end
            else:  # end before the sentence, clear of its first word
                p = self.pause_at(s.start)
                return max(0.0, s.start - min(PAD, (s.start - p.start) / 2 if p is not None else 0.0))
        p = self.pause_at(t)
        if p is not None and self.sentences:
            room = p.end - t if p.end < self.limit else self.limit - t
            new = t + min(PAD, room / 2 if p.end < self.limit else room)
            after = self.inside_sentence(new)
            new = after.start if after else new
            cuts = [c for c in self.shot_cuts if t <= c <= new]
            t = cuts[0] if cuts else new
        return min(self.limit, t)

    def latest_end(self, start: float, latest: float) -> float | None:
        """The latest place at or before `latest` where a clip starting at `start` may end: never inside a
        sentence; after a sentence's last word, with the pad held inside the pause. None when there is no
        such place at least MIN_CLIP after start."""
        latest = min(latest, self.limit)
        options = [latest] if not self.inside_sentence(latest) else []
        for s in self.sentences:
            if start < s.end <= latest:
                p = self.pause_at(s.end)  # the pad goes into a pause (half of it, all of a last one), never
                room = 0.0 if p is None else (p.end - s.end) / 2 if p.end < self.limit else p.end - s.end
                end = min(latest, s.end + min(PAD, room))
                options.append(s.end if self.inside_sentence(end) else end)  # into the next sentence
        options = [t for t in options if t - start >= MIN_CLIP]
        return max(options) if options else None

    def earliest_start(self, earliest: float, end: float) -> float | None:
        """The earliest place at or after `earliest` where a clip ending at `end` may start: never inside a
        sentence; before a sentence's first word, with the pad held inside the pause. None when there is no
        such place at least MIN_CLIP before end."""
        earliest = max(0.0, earliest)
        options = [earliest] if not self.inside_sentence(earliest) else []
        for s in self.sentences:
            if earliest <= s.start < end:
                p = self.pause_at(s.start)
                room = 0.0 if p is None else (s.start - p.start) / 2 if p.start > 0 else s.start - p.start
                start = max(earliest, s.start - min(PAD, room))
                options.append(s.start if self.inside_sentence(start) else start)
        options = [t for t in options if end - t >= MIN_CLIP]
        return min(options) if options else None

    def grow(self, start: float, end: float, length: float) -> tuple[float, float]:
        """The span widened to `length` (or the whole video, when shorter), ends never inside a sentence."""
        if self.limit <= length:
            return 0.0, self.limit
        end2 = min(self.limit, start + length)
        start2 = max(0.0, end2 - length)
        if self.inside_sentence(end2) or self.inside_sentence(start2):
            return start, end
        return min(start, start2), max(end, end2)

    def latest_word_pause(self, start: float, latest: float) -> float | None:
        """The latest end at or before `latest` in a real pause between words (inside a sentence)."""
        options = [min(latest, p.start + min(PAD, (p.end - p.start) / 2)) for p in self.pauses
                   if start + MIN_CLIP <= p.start <= latest]
        return max(options) if options else None


def _merge_reasons(first: str, second: str) -> str:
    """Reasons of picks played as one clip, each distinct reason once ("a; b" parts deduplicated)."""
    if not second or second == first:
        return first
    if not first:
        return second
    head_a, _, rest_a = first.partition(": ")
    head_b, _, rest_b = second.partition(": ")
    if rest_a and rest_b and head_a == head_b:
        parts = [p for p in rest_a.split("; ")]
        parts += [p for p in rest_b.split("; ") if p not in parts]
        return f"{head_a}: " + "; ".join(parts)
    return first if second in first else f"{first} + {second}"


def build_clips(picks: list[Pick], candidates: dict[int, Candidate],
                videos: dict[int, tuple[SourceVideo, VideoAnalysis]], target: float,
                min_clip: float = 1.5) -> list[Clip]:
    """Clips in pick order: cut clear of speech, clamped, merged, fitted to at most `target` seconds."""
    guides = {i: Guide.of(a, v.info.duration) for i, (v, a) in videos.items()}
    clips: list[Clip] = []
    for pick in picks:
        cand = candidates[pick.segment_id]
        video, _ = videos[cand.video_index]
        guide = guides[cand.video_index]
        start, end = guide.clean_start(cand.start, cand.end), guide.clean_end(cand.end, cand.start)
        if end - start < MIN_CLIP:  # a flash: grown into the time around it where no sentence is cut
            start, end = guide.grow(start, max(end, start), MIN_CLIP)
        if end - start < min(MIN_CLIP, guide.limit) - 1e-6 or end <= start:
            continue
        clip = Clip(video_index=video.index, source=video.source, name=video.name, path=video.path,
                    start=round(start, 3), end=round(end, 3), reason=pick.reason, segment_ids=[cand.id])
        # one piece of footage plays once: a pick that overlaps or nearly touches another of its video joins it
        while True:
            other = next((o for o in clips if o.video_index == clip.video_index
                          and o.start - MERGE_GAP <= clip.end and clip.start <= o.end + MERGE_GAP), None)
            if other is None:
                break
            clips.remove(other)
            other.start, other.end = min(other.start, clip.start), max(other.end, clip.end)
            other.segment_ids += [i for i in clip.segment_ids if i not in other.segment_ids]
            other.reason = _merge_reasons(other.reason, clip.reason)
            clip = other
        clips.append(clip)
    order = {p.segment_id: k for k, p in reversed(list(enumerate(picks)))}
    clips.sort(key=lambda c: min(order[i] for i in c.segment_ids))  # a merged clip plays at its first pick
    return fit_budget(clips, target, min_clip, guides)


def fit_budget(clips: list[Clip], target: float, min_clip: float,
               guides: dict[int, Guide] | None = None) -> list[Clip]:
    """At most `target` seconds: first give back the pads, then end a clip earlier or start it later at a
    pause between its sentences, and only when that cannot give enough, keep the set of whole clips that
    fills the budget best while keeping every source that fits (a knapsack), using what is left for the
    first clip left out, shortened at a pause. A clip is never cut inside a sentence."""
    clips = [c.model_copy(deep=True) for c in clips]
    guides = guides or {}
    if not clips or sum(c.duration for c in clips) <= target + 1e-6:
        return clips
    # the pads go first (breathing room, not content), each in proportion, only as much as needed
    room: list[tuple[float, float]] = []
    for clip in clips:
        guide = guides.get(clip.video_index)
        before = after = 0.0
        if guide is not None and guide.sentences:  # the pads: from the clip's edges to its first/last sentence
            inside = [m for m in guide.sentences if m.end > clip.start and m.start < clip.end]
            if inside and not guide.inside_sentence(clip.start):
                before = max(0.0, min(PAD, inside[0].start - clip.start))
            if inside and not guide.inside_sentence(clip.end):
                after = max(0.0, min(PAD, clip.end - inside[-1].end))
        room.append((before, min(after, max(0.0, clip.duration - before))))
    excess = sum(c.duration for c in clips) - target
    share = min(1.0, excess / max(1e-9, sum(a + b for a, b in room)))
    for clip, (before, after) in zip(clips, room):
        clip.start, clip.end = round(clip.start + before * share, 3), round(clip.end - after * share, 3)
    while sum(c.duration for c in clips) > target + 1e-3:  # then whole sentences from either end of a clip
        excess = sum(c.duration for c in clips) - target + 1e-3
        options = []
        for k, clip in enumerate(clips):
            guide = guides.get(clip.video_index)
            shortest = min(min_clip, clip.duration)
            end = guide.latest_end(clip.start, clip.end - excess) if guide else clip.end - excess
            if end is not None and end - clip.start >= shortest and end < clip.end - 1e-3:
                options.append((clip.end - end, -clip.duration, k, "end", end))
            start = guide.earliest_start(clip.start + excess, clip.end) if guide else None
            if start is not None and clip.end - start >= shortest and start > clip.start + 1e-3:
                options.append((start - clip.start, -clip.duration, k, "start", start))
        if not options:  # no one clip can give it all: the one that can give most gives what it can
            for k, clip in enumerate(clips):
                guide = guides.get(clip.video_index)
                floor = clip.start + min(min_clip, clip.duration)
                end = guide.latest_end(clip.start, floor) if guide else floor
                if end is not None and end < clip.end - 1e-3:
                    options.append((-(clip.end - end), -clip.duration, k, "end", end))
        if not options:
            break
        _, _, k, side, t = min(options)  # the one that loses least beyond what must go
        if side == "end":
            clips[k].end = math.floor(t * 1000) / 1000
        else:
            clips[k].start = math.ceil(round(t * 1000, 6)) / 1000
    if sum(c.duration for c in clips) <= target + 1e-3:
        return [c for c in clips if c.duration >= MIN_CLIP]
    kept = set(_knapsack(clips, target))
    out = [c for k, c in enumerate(clips) if k in kept]
    room = target - sum(c.duration for c in out)
    for k, clip in enumerate(clips):  # what is left goes to the first clip left out, cut at a pause
        if k in kept or room < min(min_clip, clip.duration):
            continue
        guide = guides.get(clip.video_index)
        end = guide.latest_end(clip.start, clip.start + room) if guide else clip.start + room
        if end is not None and end - clip.start >= min(min_clip, room):
            clip.end = math.floor(end * 1000) / 1000
            out.insert(sum(1 for j in kept if j < k), clip)
            room -= clip.duration
            kept.add(k)
    if not out:  # no clip fits as long as min_clip: the first, ended after its last whole sentence that
        clip = clips[0]  # fits, or when not one does, at the last pause between words that fits
        guide = guides.get(clip.video_index)
        end = guide.latest_end(clip.start, clip.start + target) if guide else None
        if end is None or end - clip.start < MIN_CLIP:
            end = guide.latest_word_pause(clip.start, clip.start + target) if guide else None
        clip.end = math.floor((end if end is not None else clip.start + target) * 1000) / 1000
        out = [clip]
    if len(out) == 1 and out[0].duration < min(MIN_CLIP, guides[out[0].video_index].limit if guides else MIN_CLIP) - 1e-3:
        raise PlanError("no clips left after fitting the plan to its duration budget")
    return out


def _knapsack(clips: list[Clip], target: float) -> list[int]:
    """Indices of the clips to keep: the most seconds within `target`, one clip of every video first
    (a video's first clip is worth the whole budget extra, so no source is dropped for length alone)."""
    first_of_video: dict[int, int] = {}
    for k, c in enumerate(clips):
        first_of_video.setdefault(c.video_index, k)
    firsts = set(first_of_video.values())
    values = [c.duration + (target if k in firsts else 0.0) for k, c in enumerate(clips)]
    return best_fit([c.duration for c in clips], values, target)
