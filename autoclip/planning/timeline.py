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
    """Trim from the end until the total is at most `target`: shorten the last clip (at a pause when
    one is near) or drop it when what would remain is shorter than `min_clip`."""
    clips = [c.model_copy(deep=True) for c in clips]
    while clips and sum(c.duration for c in clips) > target + 1e-6:
        last = clips[-1]
        excess = sum(c.duration for c in clips) - target
        keep = last.duration - excess
        if keep < min(min_clip, last.duration) and len(clips) > 1:
            clips.pop()
            continue
        end = last.start + max(keep, MIN_CLIP)
        pause = nearest((points or {}).get(last.video_index, []), end - 0.25, 0.25)
        last.end = round(pause if pause and pause - last.start >= MIN_CLIP else end, 3)
        if len(clips) == 1 or last.end <= last.start:
            last.end = round(last.start + min(keep, last.duration), 3) if keep > 0 else last.end
            break
    if not clips:
        raise PlanError("no clips left after fitting the plan to its duration budget")
    return clips
