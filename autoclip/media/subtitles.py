"""Transcript -> SRT on the reel's timeline: each clip's words, shifted to where the clip lands.

Cue text goes through `autoclip.text`: Chinese words are joined without spaces and lines are wrapped by
display width, where a CJK character takes two columns.
"""

from __future__ import annotations

from autoclip.models import Clip, Transcript
from autoclip.text import wrap_words

MAX_CUE = 6.0  # seconds: longer sentences are split into several cues
LINE_WIDTH = 42  # columns: 42 Latin characters or 21 Chinese ones, the usual broadcast limits
MAX_LINES = 2


def _fits(words: list) -> bool:
    return len(wrap_words([w.text for w in words], LINE_WIDTH)) <= MAX_LINES


def _stamp(seconds: float) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def reel_cues(clips: list[Clip], transcripts: dict[int, Transcript | None]) -> list[tuple[float, float, str]]:
    """(start, end, text) cues in reel time for the speech inside each clip."""
    cues = []
    offset = 0.0
    for clip in clips:
        transcript = transcripts.get(clip.video_index)
        for sentence in transcript.sentences if transcript else []:
            if sentence.end <= clip.start or sentence.start >= clip.end:
                continue
            words = [w for w in sentence.words if clip.start <= (w.start + w.end) / 2 <= clip.end]
            if not sentence.words:  # no word times: keep the sentence, clipped to the clip
                words = [sentence]
            group: list = []
            for word in words + [None]:
                if word is not None and (not group or (word.end - group[0].start <= MAX_CUE
                                                       and _fits(group + [word]))):
                    group.append(word)
                    continue
                if group:
                    start = max(group[0].start, clip.start) - clip.start + offset
                    end = min(group[-1].end, clip.end) - clip.start + offset
                    text = "\n".join(wrap_words([g.text for g in group], LINE_WIDTH))
                    if text and end > start:
                        cues.append((round(start, 3), round(end, 3), text))
                group = [word] if word is not None else []
        offset += clip.duration
    return cues


def to_srt(cues: list[tuple[float, float, str]]) -> str:
    return "".join(f"{i}\n{_stamp(a)} --> {_stamp(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues, 1))
