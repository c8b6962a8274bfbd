"""Planning is pure: segments from analyses, validation of picks, and the timeline rules."""

import pytest

from autoclip.errors import PlanError
from autoclip.models import (Candidate, Interval, MediaInfo, Pick, PlannerInfo, Selection, Sentence,
                             SourceVideo, Theme, Transcript, Usage, VideoAnalysis, Word)
from autoclip.planning.segments import candidate_segments, number_candidates, sentences
from autoclip.planning.timeline import PAD, Guide, build_clips, fit_budget
from autoclip.planning.two_pass import plan_edit
from autoclip.planning.validation import selection_problems
from autoclip.planning.heuristic import HeuristicPlanner


def _video(index: int, duration: float) -> SourceVideo:
    info = MediaInfo(duration=duration, format_name="mp4", width=640, height=360, display_width=640,
                     display_height=360, fps=25, video_codec="h264", has_audio=True)
    return SourceVideo(index=index, source=f"v{index}.mp4", name=f"v{index}.mp4", path=f"/x/v{index}.mp4",
                       sha256="0" * 64, size_bytes=1, info=info)


def _talk(duration: float = 30.0) -> VideoAnalysis:
    """Sentences of 3 s with 1 s pauses; every word 0.5 s."""
    sentences = []
    t = 0.5
    n = 0
    while t + 3 <= duration:
        words = [Word(start=t + i * 0.5, end=t + i * 0.5 + 0.45, text=f"w{n}_{i}") for i in range(6)]
        sentences.append(Sentence(start=t, end=t + 2.95, text=" ".join(w.text for w in words), words=words))
        t += 4
        n += 1
    speech = [Interval(start=s.start, end=s.end) for s in sentences]
    silences = [Interval(start=a.end, end=b.start) for a, b in zip(speech, speech[1:])]
    return VideoAnalysis(sha256="0" * 64, duration=duration, shot_cuts=[10.0, 20.0],
                         loudness_db=[-20.0] * int(duration * 4), speech=speech, silences=silences,
                         transcript=Transcript(engine="test", sentences=sentences))


def test_candidates_follow_sentences_and_respect_max_length():
    cands = candidate_segments(_talk(), 0, first_id=1, min_len=1.5, max_len=8.0)
    assert [c.id for c in cands] == list(range(1, len(cands) + 1))
    assert all(c.duration <= 8.0 for c in cands)
    assert all(0 <= c.start < c.end <= 30 for c in cands)
    spoken = [c for c in cands if c.kind == "speech"]
    assert spoken[0].start == 0.5 and spoken[0].text.startswith("w0_0")
    assert all(c.speech_ratio > 0.5 for c in spoken)
    # every sentence is a candidate of its own (no punctuation: a 1 s pause ends a sentence)
    assert [(c.start, c.end) for c in spoken] == [(s.start, s.end) for s in _talk().transcript.sentences]


def test_a_pause_still_ends_a_sentence_in_the_unpunctuated_segments_of_a_punctuated_talk():
    """Whisper punctuates only some segments of a Chinese talk: the rest keep the 0.7 s pause rule, or the
    whole talk became one sentence, every pick was pushed past its end and a 15 s reel came out 0.5 s."""
    talk = _talk()
    last = talk.transcript.sentences[-1]
    last.words[-1].text += "."
    last.text += "."
    assert [(m.start, m.end) for m in sentences(talk)] == [(s.start, s.end) for s in talk.transcript.sentences]
    cands = {c.id: c for c in number_candidates([(_video(0, 30.0), talk)], min_len=1.5, max_len=8.0)}
    picks = [Pick(segment_id=i) for i, c in cands.items() if c.kind == "speech"][2:4]
    clips = build_clips(picks, cands, {0: (_video(0, 30.0), talk)}, target=15, min_clip=1.5)
    assert [(c.start, c.end) for c in clips] == [(8.2, 15.75)], clips  # both sentences, padded, one clip


def test_silent_video_without_audio_gets_shot_based_candidates():
    analysis = VideoAnalysis(sha256="1" * 64, duration=24.0, shot_cuts=[6.0, 7.0])
    cands = candidate_segments(analysis, 0, first_id=1, min_len=1.5, max_len=8.0)
    assert cands and all(c.duration <= 8.0 for c in cands)
    assert cands[0].start == 0 and cands[-1].end == 24.0
    assert all(c.loudness_db == -90 for c in cands)


def test_one_second_video_still_gives_a_candidate():
    cands = candidate_segments(VideoAnalysis(sha256="2" * 64, duration=1.0), 3, first_id=7, min_len=1.5,
                               max_len=8.0)
    assert [(c.id, c.video_index, c.start, c.end) for c in cands] == [(7, 3, 0.0, 1.0)]


def test_ids_are_numbered_across_videos():
    pairs = [(_video(0, 30), _talk()), (_video(1, 30), _talk())]
    cands = number_candidates(pairs, min_len=1.5, max_len=8)
    assert [c.id for c in cands] == list(range(1, len(cands) + 1))
    assert {c.video_index for c in cands} == {0, 1}


def test_selection_problems_name_what_is_wrong():
    cands = {1: Candidate(id=1, video_index=0, start=0, end=5), 2: Candidate(id=2, video_index=0, start=5, end=9)}
    assert selection_problems(Selection(picks=[Pick(segment_id=1)]), cands, 30) == []
    assert "empty" in selection_problems(Selection(picks=[]), cands, 30)[0]
    assert "unknown segment ids [9]" in selection_problems(Selection(picks=[Pick(segment_id=9)]), cands, 30)[0]
    dup = selection_problems(Selection(picks=[Pick(segment_id=2), Pick(segment_id=2)]), cands, 30)
    assert "[2] are picked more than once" in dup[0]


def test_timeline_pads_inside_pauses_clamps_merges_and_fits_the_budget_at_pauses():
    video, analysis = _video(0, 18.0), _talk(30.0)
    analysis.duration = 18.0  # decodable length shorter than the transcript claims
    cands = {1: Candidate(id=1, video_index=0, start=0.5, end=3.45),  # sentences 0, 1 and 4
             2: Candidate(id=2, video_index=0, start=4.5, end=7.45),
             3: Candidate(id=3, video_index=0, start=16.5, end=19.45)}
    clips = build_clips([Pick(segment_id=i, reason=f"r{i}") for i in (1, 2, 3)], cands,
                        {0: (video, analysis)}, target=60)
    assert [c.segment_ids for c in clips] == [[1, 2], [3]]  # 1 and 2 are one pause apart: one clip
    assert clips[0].reason == "r1 + r2"
    assert 0.5 - PAD <= clips[0].start < 0.5 and 7.45 < clips[0].end <= 7.45 + PAD  # a pad inside each pause
    assert clips[-1].end == 18.0  # clamped to the decodable duration
    trimmed = fit_budget(clips, 8.0, 1.5, {0: Guide.of(analysis)})
    # pads go first, then clip 1 ends after its first sentence (never inside the second): both stay
    assert [c.segment_ids for c in trimmed] == [[1, 2], [3]]
    assert 0.5 - PAD <= trimmed[0].start <= 0.5 and trimmed[0].end == pytest.approx(3.45 + PAD)
    assert sum(c.duration for c in trimmed) <= 8.0
    only = fit_budget(clips, 2.5, 1.5, {0: Guide.of(analysis)})  # no room for a sentence of clip 1
    assert [c.segment_ids for c in only] == [[3]] and only[0].duration <= 2.5


def test_timeline_never_repeats_footage():
    video, analysis = _video(0, 30), _talk()
    cands = {1: Candidate(id=1, video_index=0, start=10, end=16),
             2: Candidate(id=2, video_index=0, start=13, end=19)}
    clips = build_clips([Pick(segment_id=1), Pick(segment_id=2)], cands, {0: (video, analysis)}, 60)
    assert all(a.end <= b.start or b.end <= a.start for a in clips for b in clips if a is not b)


def test_heuristic_represents_every_source_and_meets_the_budget():
    pairs = [(_video(i, 30), _talk()) for i in range(3)]
    theme, info = Theme(title="t", summary="s"), PlannerInfo(provider="local", model="heuristic", heuristic=True)
    plan = plan_edit(pairs, theme, info, HeuristicPlanner(), target=20, min_clip=1.5, max_clip=8)
    assert {c.video_index for c in plan.clips} == {0, 1, 2}
    assert 17 <= plan.duration <= 20
    assert all(c.reason.startswith("heuristic") for c in plan.clips)


class _BrokenModel:
    provider, model, heuristic = "test", "broken", False

    def theme(self, digests):
        return Theme(title="t", summary="s"), {}

    def select(self, request):
        return Selection(picks=[Pick(segment_id=999)]), {"broken": Usage(input_tokens=5)}


def test_bad_model_answer_falls_back_loudly():
    pairs = [(_video(0, 30), _talk())]
    info = PlannerInfo(provider="test", model="broken")
    plan = plan_edit(pairs, Theme(title="t", summary="s"), info, _BrokenModel(), target=10, min_clip=1.5,
                     max_clip=8)
    assert plan.clips and plan.planner.heuristic
    assert "fell back to the heuristic planner" in plan.planner.notes[0] and "999" in plan.planner.notes[0]


def test_zero_candidates_is_an_error_not_an_empty_success():
    empty = VideoAnalysis(sha256="3" * 64, duration=0.0)
    with pytest.raises(PlanError, match="no candidate moments"):
        plan_edit([(_video(0, 0.0), empty)], Theme(title="t", summary="s"),
                  PlannerInfo(provider="local", model="heuristic"), HeuristicPlanner(), target=10,
                  min_clip=1.5, max_clip=8)


def test_heuristic_theme_says_it_is_heuristic():
    from autoclip.planning.segments import digest

    theme, usage = HeuristicPlanner().theme([digest(_video(0, 30), _talk())])
    assert "Heuristic planner" in theme.summary and usage == {}


def test_a_trailing_fragment_joins_its_neighbour_instead_of_becoming_a_flash():
    sentences = [Sentence(start=float(t), end=float(t + 3), text=f"s{t}") for t in range(0, 42, 3)]
    sentences.append(Sentence(start=42.0, end=42.4, text="end"))
    analysis = VideoAnalysis(sha256="4" * 64, duration=42.4, transcript=Transcript(engine="t", sentences=sentences))
    cands = candidate_segments(analysis, 0, first_id=1, min_len=1.5, max_len=8.0)
    assert cands[-1].end == 42.4 and cands[-1].duration > 1.5
    assert all(c.duration >= 1.5 for c in cands)


def test_a_budget_shorter_than_any_clip_says_so():
    """Found by an adversarial sweep: --duration 0.01 said "no clips left after fitting the plan"."""
    analysis = _talk()
    cands = {c.id: c for c in candidate_segments(analysis, 0, first_id=1, min_len=1.5, max_len=8.0)}
    picks = [Pick(segment_id=i) for i, c in cands.items() if c.kind == "speech"][:2]
    with pytest.raises(PlanError, match=r"no clip fits a 0\.01 s reel: a clip lasts at least 0\.5 s"):
        build_clips(picks, cands, {0: (_video(0, 30.0), analysis)}, 0.01)
