"""Fuse shots, sentences, captions and loudness into numbered candidate segments.

A language model picks segment ids; it never writes times. So the segments must already be sensible
cuts: whole sentences where there is speech, whole shots (or even slices of long shots) where there is not.
"""

from __future__ import annotations

import bisect

from autoclip.models import Candidate, Interval, SourceVideo, VideoAnalysis, VideoDigest

MAX_GAP_IN_SEGMENT = 1.5  # seconds of pause that may sit inside one segment
MIN_CANDIDATE = 0.5  # shorter pieces are flashes, not moments (unless a video has nothing else)


def _units(analysis: VideoAnalysis) -> list[tuple[float, float, str]]:
    """The smallest meaningful pieces: sentences, else voiced stretches, else shots."""
    if analysis.transcript and analysis.transcript.sentences:
        return [(s.start, s.end, s.text) for s in analysis.transcript.sentences]
    if analysis.speech:
        return [(s.start, s.end, "") for s in analysis.speech]
    bounds = [0.0] + [c for c in analysis.shot_cuts if 0 < c < analysis.duration] + [analysis.duration]
    return [(a, b, "") for a, b in zip(bounds, bounds[1:]) if b > a]


def _split_long(start: float, end: float, text: str, max_len: float, cut_points: list[float]):
    """Slice a piece longer than max_len at cut points (word gaps, shot cuts) or evenly."""
    pieces = []
    while end - start > max_len:
        lo, hi = start + max_len * 0.5, start + max_len
        inside = [p for p in cut_points if lo <= p <= hi]
        cut = inside[-1] if inside else start + max_len * 0.75
        pieces.append((start, cut, text))
        start = cut
    pieces.append((start, end, text))
    return pieces


def _mean(values: list[float], start: float, end: float, step: float, default: float) -> float:
    lo, hi = int(start / step), max(int(start / step) + 1, int(end / step))
    window = values[lo:hi]
    return sum(window) / len(window) if window else default


def _overlap(intervals: list[Interval], start: float, end: float) -> float:
    return sum(max(0.0, min(end, i.end) - max(start, i.start)) for i in intervals)


def candidate_segments(analysis: VideoAnalysis, video_index: int, *, first_id: int, min_len: float,
                       max_len: float) -> list[Candidate]:
    """Numbered candidates for one video, ids from `first_id` upward."""
    duration = analysis.duration
    cut_points = sorted(set(analysis.shot_cuts) | set(word_gaps(analysis)))
    preferred = max(min_len, min(max_len, max_len * 0.6))
    merged: list[list] = []
    for start, end, text in _units(analysis):
        start, end = max(0.0, start), min(duration, end)
        if end <= start:
            continue
        if merged:
            last = merged[-1]
            short = last[1] - last[0] < preferred or end - start < min_len  # a fragment joins its neighbour
            if short and start - last[1] <= MAX_GAP_IN_SEGMENT and end - last[0] <= max_len:
                last[1] = end
                last[2] = f"{last[2]} {text}".strip()
                continue
        merged.append([start, end, text])
    pieces = [p for s, e, t in merged for p in _split_long(s, e, t, max_len, cut_points)]
    pieces = [p for p in pieces if p[1] - p[0] >= MIN_CANDIDATE] or pieces[:1]
    if not pieces and duration > 0:  # e.g. a 1-second silent clip with one shot
        pieces = [(0.0, duration, "")]
    out = []
    for offset, (start, end, text) in enumerate(pieces):
        inside_cuts = sum(1 for c in analysis.shot_cuts if start < c < end)
        out.append(Candidate(
            id=first_id + offset, video_index=video_index, start=round(start, 3), end=round(end, 3),
            text=text_between(analysis, start, end) or text,
            caption="; ".join(c.caption for c in analysis.captions if c.end > start and c.start < end),
            loudness_db=round(_mean(analysis.loudness_db, start, end, analysis.loudness_step, -90.0), 2),
            speech_ratio=round(_overlap(analysis.speech, start, end) / (end - start), 3),
            activity=round(_mean(analysis.activity, start, end, 1.0, 0.0), 4),
            shot_cuts=inside_cuts))
    return out


def text_between(analysis: VideoAnalysis, start: float, end: float) -> str:
    """The words spoken between start and end (by word times where known)."""
    if not analysis.transcript:
        return ""
    words = []
    for sentence in analysis.transcript.sentences:
        if sentence.end <= start or sentence.start >= end:
            continue
        if sentence.words:
            words += [w.text for w in sentence.words if (w.start + w.end) / 2 >= start
                      and (w.start + w.end) / 2 <= end]
        else:
            words.append(sentence.text)
    return " ".join(words).strip()


def word_gaps(analysis: VideoAnalysis) -> list[float]:
    """Mid-points of pauses between words and sentences: places a cut does not clip speech."""
    points = []
    if analysis.transcript:
        words = [w for s in analysis.transcript.sentences for w in s.words]
        if not words:
            words = analysis.transcript.sentences
        for a, b in zip(words, words[1:]):
            if b.start >= a.end:
                points.append(round((a.end + b.start) / 2, 3))
    points += [round((s.start + s.end) / 2, 3) for s in analysis.silences]
    return sorted(points)


def number_candidates(pairs: list[tuple[SourceVideo, VideoAnalysis]], *, min_len: float,
                      max_len: float) -> list[Candidate]:
    """Candidates for every video, numbered 1..N across the whole job."""
    out: list[Candidate] = []
    for video, analysis in pairs:
        out += candidate_segments(analysis, video.index, first_id=len(out) + 1, min_len=min_len,
                                  max_len=max_len)
    return out


def digest(video: SourceVideo, analysis: VideoAnalysis, excerpt_chars: int = 1200) -> VideoDigest:
    speech = _overlap(analysis.speech, 0.0, analysis.duration)
    text = analysis.transcript.text if analysis.transcript else ""
    return VideoDigest(
        video_index=video.index, name=video.name, duration=round(analysis.duration, 2),
        shots=len(analysis.shot_cuts) + 1,
        speech_ratio=round(speech / analysis.duration, 3) if analysis.duration else 0.0,
        transcript_excerpt=text[:excerpt_chars], captions=[c.caption for c in analysis.captions][:20])


def nearest(points: list[float], t: float, within: float) -> float | None:
    """The point in sorted `points` closest to t, if it is within `within` seconds."""
    i = bisect.bisect_left(points, t)
    best = None
    for p in points[max(0, i - 1): i + 1]:
        if abs(p - t) <= within and (best is None or abs(p - t) < abs(best - t)):
            best = p
    return best
