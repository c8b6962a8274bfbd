"""The two planning prompts and the JSON shapes their answers must have.

Every user message is one JSON document with a "task" field, so answers can be checked and a stand-in
server can answer them in tests. The model picks segment ids; it never writes timestamps.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from autoclip.models import Candidate, SelectionRequest, Theme, VideoDigest
from autoclip.planning.timeline import EVENT_KEEP

THEME_SYSTEM = (
    "You are a film editor planning a short highlight reel from several raw videos. Read the per-video "
    "digests (speech excerpts, shot counts, on-screen captions) and say what the set is about. Answer with "
    'one JSON object: {"title": "<short title>", "summary": "<one to three sentences>", '
    '"keywords": ["<word>", ...]}. Write in the footage\'s language (the "language" field, an ISO 639-1 '
    'code; when it is absent, the language most of the speech is in).')

SELECT_SYSTEM = (
    "You are a film editor. From the numbered candidate segments, pick the moments that tell the theme "
    "best, in the order they should play. Rules: use only ids from the list; the picked segments' "
    "durations must add up to at most budget_seconds (aim close to it; a sound_event or visual_event may "
    f"count at {EVENT_KEEP:.0%} of its duration and footage or quiet at min_clip_seconds, because the editor "
    "shortens them from their end when the budget is tight, while speech plays whole); include several "
    "videos when they "
    "have relevant material, and when the budget cannot hold one moment per video, leave out the weakest "
    "videos; do not pick the same id twice; never write timestamps. Each candidate has a kind: speech (a "
    "whole sentence, with its text), sound_event (a loud burst, applause, cheering or laughter, music "
    "starting), visual_event (a burst of cuts or fast motion), footage (picture or sound without speech) or "
    "quiet (silence or a steady tone: filler); detail says what makes it so. Prefer on-theme speech and "
    "events; avoid off-topic talk and quiet. Answer with one JSON "
    'object: {"picks": [{"segment_id": <id>, "reason": "<why this moment, one short sentence>"}]}. '
    'Write each reason in the footage\'s language (the "language" field, an ISO 639-1 code).')


def footage_language(digests: list[VideoDigest]) -> str | None:
    """The language most of the speech is in (by seconds of speech), so titles and reasons are written in
    it: a Chinese event gets Chinese reasons."""
    seconds: dict[str, float] = {}
    for d in digests:
        if d.language:
            main = d.language.split(",")[0].strip().lower()
            seconds[main] = seconds.get(main, 0.0) + d.speech_ratio * d.duration
    return max(seconds, key=seconds.get) if seconds else None

class ThemeAnswer(BaseModel):
    title: str = Field(min_length=1)
    summary: str = ""
    keywords: list[str] = Field(default_factory=list)

    def theme(self) -> Theme:
        return Theme(title=self.title.strip(), summary=self.summary.strip(),
                     keywords=[k.strip() for k in self.keywords if k.strip()][:12])


class PickAnswer(BaseModel):
    segment_id: int
    reason: str = ""


class SelectionAnswer(BaseModel):
    picks: list[PickAnswer]


def _doc(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def theme_messages(digests: list[VideoDigest]) -> list[dict]:
    videos = [d.model_dump(mode="json", exclude_none=True) for d in digests]
    payload = {"task": "theme", "videos": videos}
    if language := footage_language(digests):
        payload["language"] = language
    return [{"role": "system", "content": THEME_SYSTEM}, {"role": "user", "content": _doc(payload)}]


def candidate_row(c: Candidate) -> dict:
    row = {"id": c.id, "video_index": c.video_index, "kind": c.kind, "start": round(c.start, 2),
           "end": round(c.end, 2),
           "duration": round(c.duration, 2), "loudness_db": round(c.loudness_db, 1),
           "speech_ratio": round(c.speech_ratio, 2), "shot_changes": c.shot_cuts}
    if c.text:
        row["text"] = c.text[:400]
    if c.detail:
        row["detail"] = c.detail[:120]
    if c.caption:
        row["caption"] = c.caption[:200]
    return row


def selection_messages(request: SelectionRequest, candidates: list[Candidate] | None = None,
                       budget: float | None = None) -> list[dict]:
    """Pass 2 for all candidates, or for a window of them with its own budget."""
    payload = {
        "task": "select",
        "theme": request.theme.model_dump(mode="json"),
        "budget_seconds": round(budget if budget is not None else request.target_duration, 1),
        "min_clip_seconds": request.min_clip,
        "language": footage_language(request.videos),
        "videos": [{"video_index": v.video_index, "name": v.name, "duration": v.duration}
                   for v in request.videos],
        "candidates": [candidate_row(c) for c in (candidates if candidates is not None else request.candidates)],
    }
    return [{"role": "system", "content": SELECT_SYSTEM}, {"role": "user", "content": _doc(payload)}]


def repair_messages(messages: list[dict], answer: str, problems: list[str]) -> list[dict]:
    """The conversation so far plus the model's answer and what is wrong with it."""
    return messages + [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": _doc({"task": "repair", "problems": problems,
                                          "instruction": "Answer again with the corrected JSON object only."})}]


def estimate_tokens(messages: list[dict]) -> int:
    """Rough token count (about 3 characters a token for mixed English/Chinese JSON)."""
    return sum(len(m["content"]) if isinstance(m["content"], str) else 0 for m in messages) // 3
