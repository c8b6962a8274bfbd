"""Judging talk by meaning (the optional `judge` extra, planning/meaning.py): an on-topic sentence that shares
no word with the theme scores above small talk, the planner says so in its reason, AUTOCLIP_JUDGE=words
switches it off, and the model runs from the wheel alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from autoclip.config import get_settings
from autoclip.models import Candidate, SelectionRequest, Theme, VideoDigest
from autoclip.planning import meaning
from autoclip.planning.heuristic import HeuristicPlanner, content_terms

needs_model = pytest.mark.skipif(not meaning.available(),
                                 reason="the judge extra is not installed (pip install 'auto-clip[judge]')")

THEME = [["The robot competition final starts with the teams bringing their robots to the arena.",
          "Our robot climbed the wall faster than any other robot in the competition."],
         ["The judges score every robot in the competition on speed and climbing.",
          "The robot final of the competition filled the arena."]]
# on topic, yet not one content word in common with the theme sentences
NO_SHARED_WORD = "The machines raced up the course while referees timed them with stopwatches."
SMALL_TALK = "I still need to buy milk and bread on the way home tonight."


def _request(theme_keywords: list[str]) -> SelectionRequest:
    texts = [(0, THEME[0][0]), (0, THEME[0][1]), (1, THEME[1][0]), (1, THEME[1][1]),
             (2, NO_SHARED_WORD), (2, SMALL_TALK)]
    cands = [Candidate(id=i, video_index=v, start=4.0 * i, end=4.0 * i + 3.5, text=t, loudness_db=-25.0)
             for i, (v, t) in enumerate(texts)]
    videos = [VideoDigest(video_index=v, name=f"v{v}.mp4", duration=30, shots=1, speech_ratio=1.0)
              for v in range(3)]
    return SelectionRequest(theme=Theme(title="t", summary="s", keywords=theme_keywords), candidates=cands,
                            videos=videos, target_duration=10)


def test_the_probe_sentence_really_shares_no_theme_word():
    theme_words = {t for source in THEME for s in source for t in content_terms(s)}
    assert not set(content_terms(NO_SHARED_WORD)) & theme_words
    assert not set(content_terms(SMALL_TALK)) & theme_words


@needs_model
def test_an_on_topic_sentence_sharing_no_keyword_scores_above_small_talk():
    sentences = [s for source in THEME for s in source] + [NO_SHARED_WORD, SMALL_TALK]
    similarity = meaning.theme_similarity(sentences)  # no other evidence: the centre of all the talk
    on_topic, small_talk = similarity[-2], similarity[-1]
    assert on_topic > small_talk, similarity
    assert min(similarity[:4]) > small_talk  # the theme sentences themselves too


@needs_model
def test_the_planner_judges_by_meaning_and_says_so():
    request = _request(["robot", "competition"])
    by_words = HeuristicPlanner(meaning=False).judge(request)
    by_meaning = HeuristicPlanner(meaning=True).judge(request)
    # words alone cannot tell the two apart; meaning can, and the reason names the similarity
    assert by_words[4][0] == pytest.approx(by_words[5][0], abs=0.05)
    assert "no theme terms" in by_words[4][1]
    assert by_meaning[4][0] > by_meaning[5][0] + 0.2, (by_meaning[4], by_meaning[5])
    assert "close in meaning to the theme (" in by_meaning[4][1]
    assert "far in meaning from the theme (" in by_meaning[5][1]
    assert "on theme: robot" in by_meaning[0][1] and "close in meaning" in by_meaning[0][1]


def test_the_judge_setting_switches_meaning_off(monkeypatch):
    monkeypatch.setenv("AUTOCLIP_JUDGE", "words")
    get_settings.cache_clear()
    try:
        assert HeuristicPlanner().meaning is False
        monkeypatch.setenv("AUTOCLIP_JUDGE", "auto")
        get_settings.cache_clear()
        assert HeuristicPlanner().meaning is meaning.available()
        theme, _ = HeuristicPlanner().theme([VideoDigest(video_index=0, name="a.mp4", duration=9, shots=1,
                                                         speech_ratio=1, transcript_excerpt="robot robot arena")])
        assert ("judged by meaning" in theme.summary) is meaning.available()
    finally:
        get_settings.cache_clear()


@needs_model
def test_the_model_loads_from_the_wheel_with_no_network():
    """Every socket refused and the hub forced offline: the model still loads and embeds."""
    code = ("import socket\n"
            "def refuse(*a, **k):\n    raise OSError('network used')\n"
            "socket.socket = refuse; socket.create_connection = refuse\n"
            "from autoclip.planning.meaning import embed\n"
            "v = embed(['机器人比赛开始了', 'the robot contest starts'])\n"
            "print(v.shape, round(float(v[0] @ v[1]), 2))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr
    shape, cross = done.stdout.split(") ")
    assert shape == "(2, 512"
    assert float(cross) > 0.3  # the same sentence in Chinese and English lands close: multilingual


def test_the_benchmarks_paraphrased_sentences_share_no_theme_term():
    from benchmarks.quality import PARAPHRASED, SMALL_TALK
    from benchmarks.quality import THEME as CORPUS_THEME

    said = {t for source in CORPUS_THEME + SMALL_TALK for s in source for t in content_terms(s)}
    for i, sentence in enumerate(PARAPHRASED):
        own = set(content_terms(sentence))
        others = {t for j, s in enumerate(PARAPHRASED) if j != i for t in content_terms(s)}
        assert own and not own & said and not own & others, (sentence, own & (said | others))


@needs_model
def test_chinese_talk_is_judged_by_meaning_too():
    theme = ["机器人比赛的决赛今天在体育馆开始。", "我们队的机器人在比赛中爬上了墙。",
             "评委按速度给每个机器人打分。", "决赛里最小的机器人爬得最快。"]
    on_topic = "裁判拿着秒表，看着那些机械装置往上冲。"  # referees, stopwatches, machines: no theme term
    small_talk = "我还要在回家的路上买牛奶和面包。"
    theme_terms = {t for s in theme for t in content_terms(s)}
    assert not set(content_terms(on_topic)) & theme_terms and not set(content_terms(small_talk)) & theme_terms
    similarity = meaning.theme_similarity(theme + [on_topic, small_talk], [1, 1, 1, 1, 0, 0])
    assert similarity[-2] > similarity[-1], similarity
