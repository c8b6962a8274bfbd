"""Fuse words, loudness, spectral flatness, shots and captions into numbered candidate moments of every kind.

A language model picks candidate ids; it never writes times. So candidates must already be sensible cuts:
whole sentences rebuilt from word times and punctuation (not decoder segments, which split sentences and
stretch over silence), sound events (loud bursts, sustained noise-like sound such as applause or cheering,
onsets after quiet), visual events (bursts of cuts or motion), other footage, and quiet stretches labelled
as such. Each candidate says its kind, so both planners weigh the same facts. A new kind is one function
returning `Moment`s plus one entry in `DETECTORS`.
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass

from autoclip.models import Candidate, Interval, SourceVideo, VideoAnalysis, VideoDigest, Word
from autoclip.text import ends_sentence, join_words

KINDS = ("speech", "sound_event", "visual_event", "footage", "quiet")
EVENT_KINDS = ("sound_event", "visual_event")  # their start carries them: a cut keeps it, shortens the end
MIN_PAUSE = 0.2  # a real pause between words; shorter gaps are how words touch in running speech
SENTENCE_PAUSE = 0.7  # an unpunctuated transcript: a pause this long ends a sentence
LONG_PAUSE = 2.0  # a punctuated one: a pause this long still ends a sentence (a missed full stop)
CLAUSE_MARKS = ".!?,;:。！？，、；：…"  # a decoder segment with none of these is unpunctuated
MAX_GAP_IN_SEGMENT = 0.75  # a fragment shorter than min_len joins a neighbour only across a pause this short
MIN_CANDIDATE = 0.5  # shorter pieces are flashes, not moments (unless a video has nothing else)
BURST_DB = 6.0  # a sound event: this much above the video's typical voiced level ...
BURST_MIN = 0.75  # ... for at least this long
NOISE_FLATNESS = 0.35  # spectral flatness above this is noise-like (applause, cheering, crowd, rain)
NOISE_MIN = 1.0  # sustained noise-like sound counts as an event from this long
TONE_FLATNESS = 0.06  # below this, and steady in level, a sound is a tone (test card, hum): not content
TONE_STEADY_DB = 1.5
VISUAL_CUTS = 3  # this many shot cuts within VISUAL_WINDOW seconds is a burst of cuts
VISUAL_WINDOW = 4.0
MOVING = 0.0005  # mean scene score per second above which a picture moves (a still card scores 0-0.0001)
VISUAL_ACTIVITY = 3.0  # or picture activity this many times the video's median (and at least 0.08)


@dataclass
class Moment:
    """A span of one video with its kind, what makes it so, and any words spoken in it."""

    start: float
    end: float
    kind: str
    detail: str = ""
    text: str = ""


# ---------------------------------------------------------------- words and sentences

def all_words(analysis: VideoAnalysis) -> list[Word]:
    """Every word in time order; a sentence without word times counts as one long word."""
    if not analysis.transcript:
        return []
    out: list[Word] = []
    for sentence in analysis.transcript.sentences:
        if sentence.words:
            out += [w for w in sentence.words if w.end >= w.start and w.text.strip()]
        elif sentence.text.strip() and sentence.end > sentence.start:
            out.append(Word(start=sentence.start, end=sentence.end, text=sentence.text.strip()))
    return sorted(out, key=lambda w: (w.start, w.end))


def sentences(analysis: VideoAnalysis) -> list[Moment]:
    """Sentences rebuilt from word times: a word ending in . ! ? 。！？ ends one, and so does a long pause
    (SENTENCE_PAUSE when the transcript has no punctuation at all, LONG_PAUSE when it has)."""
    words = all_words(analysis)
    if not words:
        return []
    punctuated = any(ends_sentence(w.text) for w in words)
    # A decoder segment with no punctuation at all (Whisper often punctuates only some segments of a
    # Chinese talk) keeps the unpunctuated rule, or a whole talk could become one "sentence" no cut may enter.
    bare = {id(w) for s in analysis.transcript.sentences if not any(c in CLAUSE_MARKS for c in s.text)
            for w in s.words}
    out: list[Moment] = []
    current: list[Word] = []
    for i, word in enumerate(words):
        current.append(word)
        nxt = words[i + 1] if i + 1 < len(words) else None
        pause = LONG_PAUSE if punctuated and id(word) not in bare else SENTENCE_PAUSE
        if nxt is None or (punctuated and ends_sentence(word.text)) or nxt.start - word.end >= pause:
            out.append(Moment(start=current[0].start, end=max(w.end for w in current), kind="speech",
                              text=join_words([w.text for w in current])))
            current = []
    return _snap_to_voice(out, analysis)


VOICE_SNAP = 0.5  # how far a sentence edge moves out to where its sound starts or stops
DIP_DB = 6.0  # a step this much quieter than a sentence's first sound is the pause before it


def _snap_to_voice(found: list[Moment], analysis: VideoAnalysis) -> list[Moment]:
    """Word times from a decoder are often late at the start and early at the end (Whisper's by 0.1-0.3 s):
    a sentence starts where the sound it sits in starts, and ends where it stops, when that is close by.
    When it follows another sentence within one stretch of sound (a pause too short to be a silence), it
    starts in the middle of the quietest loudness step between them: the dip is the pause."""
    voiced = analysis.speech
    for k, m in enumerate(found):
        floor = found[k - 1].end if k else 0.0
        ceiling = found[k + 1].start if k + 1 < len(found) else analysis.duration
        snapped = False
        for v in voiced:
            if v.start < m.start <= v.end and m.start - v.start <= VOICE_SNAP:
                m.start, snapped = round(max(v.start, floor), 3), True
            if v.start <= m.end < v.end and v.end - m.end <= VOICE_SNAP:
                m.end = round(min(v.end, ceiling), 3)
        if not snapped and k and any(v.start < m.start <= v.end for v in voiced):
            m.start = _after_dip(analysis, floor, m.start)
    return found


def _after_dip(analysis: VideoAnalysis, floor: float, start: float) -> float:
    """`start` moved back to the middle of the quietest loudness step between `floor` and it, when that step
    is DIP_DB quieter than the step `start` is in (never before `floor`)."""
    levels, step = analysis.loudness_db, analysis.loudness_step
    at = min(len(levels) - 1, int(start / step))
    lo = int(floor / step)
    if not levels or at <= lo:
        return start
    dip = _quietest_step(levels, lo, at)
    if levels[dip] > levels[at] - DIP_DB:
        return start
    return round(min(start, max(floor, (dip + 0.5) * step)), 3)


def pauses(analysis: VideoAnalysis) -> list[Interval]:
    """Where a cut clips no speech: gaps of at least MIN_PAUSE between words, and the time before the first
    and after the last word. Touching words are never a pause. Without words: the silences."""
    words = all_words(analysis)
    if not words:
        return [Interval(start=s.start, end=s.end) for s in analysis.silences]
    out = [Interval(start=0.0, end=max(0.0, words[0].start))] if words[0].start > 0 else []
    reach = words[0].end
    for word in words[1:]:
        if word.start - reach >= MIN_PAUSE:
            out.append(Interval(start=reach, end=word.start))
        reach = max(reach, word.end)
    if analysis.duration > reach:
        out.append(Interval(start=reach, end=analysis.duration))
    return out


def word_gaps(analysis: VideoAnalysis) -> list[float]:
    """Mid-points of real pauses (at least MIN_PAUSE): places a cut does not clip a word."""
    return sorted(round((p.start + p.end) / 2, 3) for p in pauses(analysis))


# ---------------------------------------------------------------- levels, events

def _step_level(analysis: VideoAnalysis, values: list[float], t0: float, t1: float, default: float) -> float:
    step = analysis.loudness_step
    lo, hi = int(t0 / step), max(int(t0 / step) + 1, int(round(t1 / step)))
    window = values[lo:hi]
    return sum(window) / len(window) if window else default


def _silent_steps(analysis: VideoAnalysis) -> list[bool]:
    step = analysis.loudness_step
    silent = [False] * len(analysis.loudness_db)
    for s in analysis.silences:
        for i in range(int(s.start / step), min(len(silent), int(round(s.end / step)))):
            silent[i] = True
    return silent


def typical_level(analysis: VideoAnalysis) -> float | None:
    """Median level of the voiced steps: the yardstick a burst is measured against."""
    silent = _silent_steps(analysis)
    voiced = [v for v, quiet in zip(analysis.loudness_db, silent) if not quiet]
    return statistics.median(voiced) if voiced else None


def _runs(flags: list[bool], step: float, min_len: float, bridge: int = 1,
          breaks: list[bool] | None = None) -> list[tuple[float, float]]:
    """Runs of True at least min_len long, holes of up to `bridge` steps bridged (never a `breaks` step)."""
    out: list[tuple[float, float]] = []
    start = None
    hole = 0
    for i, flag in enumerate(flags + [False] * (bridge + 1)):
        if flag:
            start = i if start is None else start
            hole = 0
        elif start is not None:
            hole += 1 if not (breaks and i < len(breaks) and breaks[i]) else bridge + 1
            if hole > bridge:
                end = i - hole + 1
                if (end - start) * step >= min_len:
                    out.append((round(start * step, 3), round(end * step, 3)))
                start, hole = None, 0
    return out


def sound_events(analysis: VideoAnalysis, max_len: float) -> list[Moment]:
    """Loud bursts and sustained noise-like sound, from the loudness and flatness curves. (An onset detector
    that tells music starting from a voice starting needs more than these two curves: not yet.)"""
    levels, step = analysis.loudness_db, analysis.loudness_step
    ref = typical_level(analysis)
    if ref is None:
        return []
    found: list[Moment] = []
    silent = _silent_steps(analysis)
    tonal = _tonal_steps(analysis)
    loud = [v >= ref + BURST_DB and not t for v, t in zip(levels, tonal)]
    for a, b in _runs(loud, step, BURST_MIN, breaks=silent):
        peak = max(levels[int(a / step):int(round(b / step))])
        found.append(Moment(a, b, "sound_event", f"loud burst {peak - ref:+.0f} dB over the video's typical level"))
    if analysis.flatness:
        noisy = [f >= NOISE_FLATNESS and not quiet for f, quiet in zip(analysis.flatness, silent)]
        for a, b in _runs(noisy, step, NOISE_MIN, breaks=silent):
            found.append(Moment(a, b, "sound_event", "sustained noise-like sound (applause, cheering, crowd)"))
    return _merge_moments(found, max_len)


def _tonal_steps(analysis: VideoAnalysis) -> list[bool]:
    """Steps of a steady tone (test card, hum, feedback): tone-like spectrum and a level that does not move."""
    levels, flat = analysis.loudness_db, analysis.flatness
    out = [False] * len(levels)
    for i in range(1, len(levels) - 1):
        if i < len(flat) and flat[i] < TONE_FLATNESS and abs(levels[i] - levels[i - 1]) < TONE_STEADY_DB \
                and abs(levels[i + 1] - levels[i]) < TONE_STEADY_DB:
            out[i] = True
    return out


def _merge_moments(moments: list[Moment], max_len: float) -> list[Moment]:
    """Overlapping events of one kind become one, keeping each distinct detail once; at most max_len long
    (the start of an event is what matters)."""
    out: list[Moment] = []
    for m in sorted(moments, key=lambda m: m.start):
        if out and m.start <= out[-1].end:
            last = out[-1]
            last.end = max(last.end, m.end)
            if not any(d.split()[:2] == m.detail.split()[:2] for d in last.detail.split("; ")):
                last.detail = f"{last.detail}; {m.detail}"  # each kind of evidence once
            continue
        out.append(Moment(m.start, m.end, m.kind, m.detail, m.text))
    for m in out:
        m.end = min(m.end, m.start + max_len)
    return out


def visual_events(analysis: VideoAnalysis, max_len: float) -> list[Moment]:
    """Bursts of shot cuts, and stretches where the picture moves far more than is usual for this video."""
    found: list[Moment] = []
    cuts = sorted(analysis.shot_cuts)
    i = 0
    while i < len(cuts):
        j = i
        while j + 1 < len(cuts) and cuts[j + 1] - cuts[i] <= VISUAL_WINDOW:
            j += 1
        if j - i + 1 >= VISUAL_CUTS:
            found.append(Moment(cuts[i], min(analysis.duration, cuts[j] + 1.0), "visual_event",
                                f"{j - i + 1} cuts in {cuts[j] - cuts[i]:.0f} s"))
            i = j + 1
        else:
            i += 1
    if analysis.activity:  # motion, not cuts: a second holding a cut scores high for the cut alone
        median = statistics.median(analysis.activity)
        bar = max(0.08, VISUAL_ACTIVITY * median)
        cut_seconds = {int(c) for c in cuts}
        moving = [v >= bar and k not in cut_seconds for k, v in enumerate(analysis.activity)]
        for a, b in _runs(moving, 1.0, 2.0, bridge=0):
            found.append(Moment(a, min(b, analysis.duration), "visual_event", "fast motion"))
    return _merge_moments(found, max_len)


# ---------------------------------------------------------------- the rest: speech without words, footage, quiet

def _subtract(spans: list[tuple[float, float]], holes: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out = []
    for a, b in spans:
        pieces = [(a, b)]
        for h0, h1 in holes:
            pieces = [p for x, y in pieces for p in ((x, min(y, h0)), (max(x, h1), y)) if p[1] - p[0] > 1e-6]
        out += pieces
    return out


def _label_rest(analysis: VideoAnalysis, start: float, end: float, has_words: bool,
                steps: tuple[list[bool], list[bool]] | None = None) -> list[Moment]:
    """Time that is neither a sentence nor a sound event: silence and steady tone are quiet (over a moving
    picture, a long silence is footage, a short one in a talk still a pause); sound is speech when there is
    no transcript to say otherwise, else footage; no audio at all is footage."""
    step = analysis.loudness_step
    if not analysis.loudness_db:
        return [Moment(start, end, "footage", "picture only")]
    silent, tonal = steps or (_silent_steps(analysis), _tonal_steps(analysis))  # (per video, computed once)
    labels = []
    lo, hi = int(start / step), max(int(start / step) + 1, int(round(end / step)))
    for i in range(lo, min(hi, len(analysis.loudness_db))):
        if silent[i]:
            labels.append("silence")
        elif tonal[i]:
            labels.append("tone")
        else:
            labels.append("sound")
    # runs of one label; a short quiet gap between sounds is a pause inside them (a breath between words),
    # and a blip of sound in the quiet is a click: neither is a moment of its own
    runs: list[list] = []
    for i, label in enumerate(labels):
        t = (lo + i) * step
        if runs and runs[-1][2] == label:
            runs[-1][1] = t + step
        else:
            runs.append([t, t + step, label])
    for k in range(1, len(runs) - 1):
        if runs[k][2] != "sound" and runs[k][1] - runs[k][0] < SENTENCE_PAUSE \
                and runs[k - 1][2] == "sound" == runs[k + 1][2]:
            runs[k][2] = "sound"
    for k, run in enumerate(runs):  # (at the edges, a leftover of the event next to it)
        blip = 0.5 if k in (0, len(runs) - 1) else 0.3
        if run[2] == "sound" and run[1] - run[0] < blip and len(runs) > 1:
            run[2] = runs[k - 1][2] if k else runs[k + 1][2]
    merged: list[list] = []
    for run in runs:
        if merged and merged[-1][2] == run[2]:
            merged[-1][1] = run[1]
        else:
            merged.append(list(run))
    out = []
    for a, b, label in merged:
        a, b = max(a, start), min(b, end)
        if b <= a:
            continue
        moving = _mean(analysis.activity, a, b) >= MOVING
        if label == "silence" and has_words and b - a < LONG_PAUSE:  # a breath between sentences, not footage
            out.append(Moment(a, b, "quiet", "pause in the talk"))
        elif label in ("silence", "tone") and moving:
            out.append(Moment(a, b, "footage", "moving picture, " + ("no sound" if label == "silence"
                                                                      else "steady tone")))
        elif label == "silence":
            out.append(Moment(a, b, "quiet", "silence, still picture"))
        elif label == "tone":
            out.append(Moment(a, b, "quiet", "steady tone, still picture (test card or hum)"))
        elif has_words:
            out.append(Moment(a, b, "footage", "sound without speech"))
        else:
            out.append(Moment(a, b, "speech", "voiced sound (no transcript)"))
    return out


# ---------------------------------------------------------------- candidates

def _split(m: Moment, max_len: float, preferred: float, cut_points: list[float],
           quietest=None) -> list[Moment]:
    """Slice a moment longer than max_len: speech at real pauses (never inside a word), other kinds evenly
    into pieces of about `preferred`, events keep their start (the part that matters). `quietest(a, b)`:
    where to cut voiced sound with no pause and no words to go by (its quietest moment in a..b)."""
    if m.end - m.start <= max_len:
        return [m]
    if m.kind in EVENT_KINDS:
        return [Moment(m.start, m.start + max_len, m.kind, m.detail, m.text)]
    pieces = []
    start = m.start
    while m.end - start > max_len:
        if m.kind == "speech":
            inside = [p for p in cut_points if start + max_len * 0.4 <= p <= start + max_len]
            cut = inside[-1] if inside else None
            if cut is None and quietest is not None:
                cut = quietest(start + max_len * 0.4, start + max_len)
            if cut is None:
                break  # one unbroken run of words: keep it whole rather than cut inside a word
        else:
            count = max(1, round((m.end - start) / preferred))
            cut = start + (m.end - start) / count
        pieces.append(Moment(start, cut, m.kind, m.detail))
        start = cut
    pieces.append(Moment(start, m.end, m.kind, m.detail))
    return pieces


def _quietest(analysis: VideoAnalysis, start: float, end: float) -> float | None:
    """The middle of the quietest loudness step between start and end (a dip between words, most likely);
    None without a loudness curve."""
    step, levels = analysis.loudness_step, analysis.loudness_db
    lo, hi = int(start / step + 0.999), min(len(levels), int(end / step))
    if hi <= lo:
        return None
    k = _quietest_step(levels, lo, hi)
    return round(min(end, max(start, (k + 0.5) * step)), 3)


def _quietest_step(levels: list[float], lo: int, hi: int) -> int:
    """The index of the quietest of levels[lo:hi] (the latest, of equals)."""
    return min(range(lo, hi), key=lambda i: (levels[i], -i))


def _join_fragments(moments: list[Moment], min_len: float, max_len: float) -> list[Moment]:
    """A sentence shorter than min_len joins the neighbour it nearly touches (a pause of at most
    MAX_GAP_IN_SEGMENT), so it is not a flash; across a longer pause it stays on its own."""
    out: list[Moment] = []
    for m in moments:
        if out:
            last = out[-1]
            short = last.end - last.start < min_len or m.end - m.start < min_len
            if short and m.start - last.end <= MAX_GAP_IN_SEGMENT and m.end - last.start <= max_len:
                last.end = m.end
                last.text = join_words([last.text, m.text])
                continue
        out.append(Moment(m.start, m.end, m.kind, m.detail, m.text))
    return out


def moments(analysis: VideoAnalysis, *, min_len: float, max_len: float) -> list[Moment]:
    """Every candidate moment of one video, in time order (events may overlap the rest)."""
    duration = analysis.duration
    if duration <= 0:
        return []
    preferred = max(min_len, min(max_len, max_len * 0.6))
    spoken = _join_fragments(sentences(analysis), min_len, max_len)
    events = [m for detect in DETECTORS for m in detect(analysis, max_len)]
    sound = [(e.start, e.end) for e in events if e.kind == "sound_event"]
    taken = [(s.start, s.end) for s in spoken] + sound
    steps = (_silent_steps(analysis), _tonal_steps(analysis))
    rest = [m for a, b in _subtract([(0.0, duration)], sorted(taken))
            for m in _label_rest(analysis, a, b, bool(spoken), steps)]
    cut_points = word_gaps(analysis)
    quietest = None if spoken else (lambda a, b: _quietest(analysis, a, b))  # no words: cut where it dips
    found = [p for m in spoken + rest + events for p in _split(m, max_len, preferred, cut_points, quietest)]
    found = [Moment(max(0.0, m.start), min(duration, m.end), m.kind, m.detail, m.text) for m in found]
    found = [m for m in found if m.end - m.start >= MIN_CANDIDATE] or [m for m in found if m.end > m.start][:1]
    if not found:  # e.g. a 1-second clip with nothing in it
        found = [Moment(0.0, duration, "footage", "the whole video")]
    return sorted(found, key=lambda m: (m.start, m.end))


DETECTORS = [sound_events, visual_events]  # each: (analysis, max_len) -> list[Moment]


def _overlap(intervals: list[Interval], start: float, end: float) -> float:
    return sum(max(0.0, min(end, i.end) - max(start, i.start)) for i in intervals)


def candidate_segments(analysis: VideoAnalysis, video_index: int, *, first_id: int, min_len: float,
                       max_len: float) -> list[Candidate]:
    """Numbered candidates for one video, ids from `first_id` upward."""
    out = []
    spoken = all_words(analysis)
    for offset, m in enumerate(moments(analysis, min_len=min_len, max_len=max_len)):
        start, end = m.start, m.end
        words = text_between(analysis, start, end, spoken) if m.kind != "quiet" else ""
        out.append(Candidate(
            id=first_id + offset, video_index=video_index, start=round(start, 3), end=round(end, 3),
            kind=m.kind, detail=m.detail, text=words or m.text,
            caption="; ".join(c.caption for c in analysis.captions if c.end > start and c.start < end),
            loudness_db=round(_step_level(analysis, analysis.loudness_db, start, end, -90.0), 2),
            speech_ratio=round(_overlap(analysis.speech, start, end) / (end - start), 3),
            activity=round(_mean(analysis.activity, start, end), 4),
            shot_cuts=sum(1 for c in analysis.shot_cuts if start < c < end)))
    return out


def _mean(values: list[float], start: float, end: float) -> float:
    window = values[int(start): max(int(start) + 1, int(end))]
    return sum(window) / len(window) if window else 0.0


def text_between(analysis: VideoAnalysis, start: float, end: float, words: list[Word] | None = None) -> str:
    """The words spoken between start and end (a word counts when its middle is inside); `words`: the
    video's all_words, when the caller has them already."""
    words = all_words(analysis) if words is None else words
    return join_words([w.text for w in words if start <= (w.start + w.end) / 2 <= end])


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
    text = join_words([m.text for m in sentences(analysis)])
    return VideoDigest(
        video_index=video.index, name=video.name, duration=round(analysis.duration, 2),
        shots=len(analysis.shot_cuts) + 1,
        speech_ratio=round(speech / analysis.duration, 3) if analysis.duration else 0.0,
        transcript_excerpt=text[:excerpt_chars], captions=[c.caption for c in analysis.captions][:20],
        language=(analysis.transcript.language or None) if analysis.transcript else None)


def nearest(points: list[float], t: float, within: float) -> float | None:
    """The point in sorted `points` closest to t, if it is within `within` seconds."""
    i = bisect.bisect_left(points, t)
    best = None
    for p in points[max(0, i - 1): i + 1]:
        if abs(p - t) <= within and (best is None or abs(p - t) < abs(best - t)):
            best = p
    return best
