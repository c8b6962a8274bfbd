"""Turn picked segment ids into clips: map ids to times, snap to word gaps and shot cuts, clamp to the
probed duration, merge overlaps, and fit the duration budget. Pure code: no I/O."""

from __future__ import annotations

from autoclip.errors import PlanError
from autoclip.models import Candidate, Clip, Pick, SourceVideo, VideoAnalysis
from autoclip.planning.segments import nearest, word_gaps

SNAP_WINDOW = 0.35  # how far a cut may move to land on a pause or a shot cut
MERGE_GAP = 0.3  # clips of one video closer than this become one
MIN_CLIP = 0.5  # shorter than this is a flash, not a clip


def snap_points(analysis: VideoAnalysis) -> list[float]:
    return sorted(set(word_gaps(analysis)) | set(analysis.shot_cuts))


def build_clips(picks: list[Pick], candidates: dict[int, Candidate],
                videos: dict[int, tuple[SourceVideo, VideoAnalysis]], target: float,
                min_clip: float = 1.5) -> list[Clip]:
    """Clips in pick order, snapped, clamped, merged and trimmed to at most `target` seconds."""
    clips: list[Clip] = []
    points = {i: snap_points(a) for i, (_, a) in videos.items()}
    for pick in picks:
        cand = candidates[pick.segment_id]
        video, analysis = videos[cand.video_index]
        limit = min(analysis.duration, video.info.duration)
        start = nearest(points[cand.video_index], cand.start, SNAP_WINDOW) or cand.start
        end = nearest(points[cand.video_index], cand.end, SNAP_WINDOW) or cand.end
        start, end = max(0.0, start), min(limit, end)
        for other in clips:  # never show the same footage twice
            if other.video_index == cand.video_index and other.start < end and start < other.end:
                if other.start <= start:
                    start = other.end
                else:
                    end = other.start
        if end - start < MIN_CLIP:
            continue
        prev = clips[-1] if clips else None
        if prev and prev.video_index == cand.video_index and 0 <= start - prev.end <= MERGE_GAP:
            prev.end = round(end, 3)
            prev.segment_ids.append(cand.id)
            prev.reason = f"{prev.reason} + {pick.reason}" if pick.reason else prev.reason
            continue
        clips.append(Clip(video_index=video.index, source=video.source, name=video.name, path=video.path,
                          start=round(start, 3), end=round(end, 3), reason=pick.reason,
                          segment_ids=[cand.id]))
    return fit_budget(clips, target, min_clip, points)


def fit_budget(clips: list[Clip], target: float, min_clip: float,
               points: dict[int, list[float]] | None = None) -> list[Clip]:
    """Shorten clips until the total is at most `target`, keeping every source represented where it can.

    Clips longer than `min_clip` give up time in proportion to their length (each new end moved back to a
    pause when one is within SNAP_WINDOW); only when all are at `min_clip` are clips dropped from the end.
    """
    clips = [c.model_copy(deep=True) for c in clips]
    points = points or {}
    total = sum(c.duration for c in clips)
    if total <= target + 1e-6:
        return clips
    while len(clips) > 1 and sum(min(c.duration, min_clip) for c in clips) > target:
        clips.pop()
    total = sum(c.duration for c in clips)
    spare = sum(max(0.0, c.duration - min_clip) for c in clips)
    excess = total - target
    for clip in clips:
        if excess <= 0 or spare <= 0:
            break
        give = max(0.0, clip.duration - min_clip) * min(1.0, excess / spare)
        end = clip.end - give
        pause = nearest(points.get(clip.video_index, []), end - SNAP_WINDOW / 2, SNAP_WINDOW / 2)
        if pause and pause - clip.start >= min(min_clip, clip.duration):
            end = pause
        clip.end = round(end, 3)
    overshoot = sum(c.duration for c in clips) - target
    if overshoot > 1e-6:  # a single clip, or rounding: cut the last one exactly
        clips[-1].end = round(clips[-1].end - overshoot, 3)
    if not clips or clips[-1].duration < MIN_CLIP:
        raise PlanError("no clips left after fitting the plan to its duration budget")
    return clips
