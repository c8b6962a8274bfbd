"""Chinese footage end to end in the parts this layer owns: SRT cues joined without spaces and wrapped by
display width, and keyword terms that work on a real Mandarin transcript."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from autoclip.media.subtitles import LINE_WIDTH, MAX_LINES, reel_cues, to_srt
from autoclip.models import Clip, Sentence, Transcript, Word
from autoclip.providers import whisper_models
from autoclip.text import display_width, ends_sentence, has_cjk, terms


def _chinese_transcript(text: str, start: float = 0.0, per_char: float = 0.25) -> Transcript:
    words = [Word(start=start + i * per_char, end=start + (i + 1) * per_char - 0.02, text=c)
             for i, c in enumerate(text)]
    return Transcript(engine="t", language="zh",
                      sentences=[Sentence(start=words[0].start, end=words[-1].end, text=text, words=words)])


def _clip(start: float, end: float, index: int = 0) -> Clip:
    return Clip(video_index=index, source="talk.mp4", name="talk.mp4", path="talk.mp4", start=start, end=end)


def test_chinese_cues_have_no_spaces_and_lines_fit_the_screen():
    text = "今天我们来聊一聊如何用自动剪辑工具把几段很长的原始素材剪成一段短小精悍的精彩集锦。"
    cues = reel_cues([_clip(0.0, 30.0)], {0: _chinese_transcript(text)})
    joined = "".join(cue[2].replace("\n", "") for cue in cues)
    assert joined == text  # every character once, in order, and no space anywhere
    for _, _, cue in cues:
        lines = cue.split("\n")
        assert len(lines) <= MAX_LINES and all(display_width(line) <= LINE_WIDTH for line in lines)
    assert any("\n" in cue for _, _, cue in cues)  # long enough to need two lines somewhere
    srt = to_srt(cues)
    assert srt.startswith("1\n00:00:00,000 --> ") and "今天我们" in srt


def test_chinese_cues_follow_the_clip_and_reel_timeline():
    transcript = _chinese_transcript("大家好我的名字是小明这是一条测试视频", start=10.0, per_char=0.5)
    cues = reel_cues([_clip(0.0, 2.0, index=1), _clip(12.0, 14.0)], {0: transcript, 1: None})
    assert cues == [(2.0, 3.98, "的名字是")]  # 12-14 s holds 的 名 字 是, shifted to 2 s


def test_mixed_language_cues_keep_spaces_only_between_latin_words():
    words = [Word(start=i * 0.4, end=i * 0.4 + 0.35, text=t)
             for i, t in enumerate(["我们", "用", "Prefect", "orchestrate", "整个", "流程。"])]
    transcript = Transcript(engine="t", sentences=[Sentence(start=0, end=2.4, text="x", words=words)])
    assert reel_cues([_clip(0, 3)], {0: transcript})[0][2] == "我们用Prefect orchestrate整个流程。"


def test_chinese_sentences_end_where_english_ones_do():
    assert ends_sentence("这是一条测试视频。") and ends_sentence("Is it?") and not ends_sentence("大家好，")


@pytest.mark.skipif(not whisper_models.base_installed(), reason="speech extra not installed")
def test_real_mandarin_transcript_gives_chinese_terms_and_srt(shared_media, tmp_path):
    from autoclip.media.ffmpeg import run_ffmpeg
    from autoclip.providers.whisper import WhisperRecognizer

    pytest.importorskip("jieba")
    clip = shared_media / "autocut_test002_zh_en.mov"
    if not clip.exists():
        pytest.skip(f"{clip.name} not in {shared_media}")
    wav = tmp_path / "talk.wav"
    run_ffmpeg(["-i", str(clip), "-vn", "-ac", "1", "-ar", "16000", str(wav)], what="WAV")
    transcript = WhisperRecognizer("auto", cache_dir=Path(os.environ["AUTOCLIP_CACHE_DIR"])).transcribe(wav)
    counted = Counter(t for s in transcript.sentences for t in terms(s.text) if has_cjk(t))
    assert {"大家", "名字", "测试", "视频"} & set(counted), counted  # words, not character pairs
    assert all(len(t) <= 4 for t in counted)
    cues = reel_cues([_clip(0.0, transcript.sentences[-1].end + 0.5)], {0: transcript})
    chinese = [cue for _, _, cue in cues if has_cjk(cue)]
    assert chinese and not any("视 频" in cue or "测 试" in cue for cue in chinese)


def test_benchmark_error_rates_count_chinese_characters_and_english_words():
    from benchmarks.speech import error_rates, tokens

    assert tokens("大家好,我是AutoCut.  Hello, World!") == ["大", "家", "好", "我", "是", "autocut", "hello", "world"]
    rates = error_rates("这是一条用于测试的视频。Hello there.", "這是一條龍魚測試的視頻 hello there")
    assert rates["cer"] == pytest.approx(2 / 11)  # Traditional counts as Simplified; 用于 -> 龙鱼 is two
    assert rates["wer"] == 0.0 and rates["mer"] == pytest.approx(2 / 13)


def test_prompts_ask_for_titles_and_reasons_in_the_footages_language():
    """A mostly Chinese set gets its theme and reasons asked for in Chinese (by speech seconds, not by
    how many videos speak a language)."""
    import json

    from autoclip.models import SelectionRequest, Theme, VideoDigest
    from autoclip.planning import prompts

    digests = [VideoDigest(video_index=0, name="发布会.mp4", duration=120, shots=4, speech_ratio=0.8, language="zh"),
               VideoDigest(video_index=1, name="a.mp4", duration=20, shots=1, speech_ratio=0.5, language="en"),
               VideoDigest(video_index=2, name="b.mp4", duration=20, shots=1, speech_ratio=0.5, language="en"),
               VideoDigest(video_index=3, name="silent.mp4", duration=60, shots=9, speech_ratio=0.0)]
    assert prompts.footage_language(digests) == "zh"
    theme = json.loads(prompts.theme_messages(digests)[1]["content"])
    assert theme["language"] == "zh" and "language" in prompts.THEME_SYSTEM
    request = SelectionRequest(theme=Theme(title="t", summary=""), candidates=[], videos=digests,
                               target_duration=30)
    select = json.loads(prompts.selection_messages(request)[1]["content"])
    assert select["language"] == "zh" and "reason in the footage's language" in prompts.SELECT_SYSTEM
    assert prompts.footage_language(digests[3:]) is None


def test_the_offline_planner_gives_chinese_footage_a_chinese_theme():
    from autoclip.models import VideoDigest
    from autoclip.planning.heuristic import HeuristicPlanner

    talks = ["今天我们发布新的自动剪辑工具，自动剪辑工具可以把长视频剪成短视频。",
             "自动剪辑工具上线以后，很多人用它剪辑旅行视频。",
             "我们也欢迎大家试用自动剪辑工具，并提出意见。"]
    digests = [VideoDigest(video_index=i, name=f"第{i + 1}段.mp4", duration=30, shots=2, speech_ratio=0.8,
                           transcript_excerpt=t, language="zh") for i, t in enumerate(talks)]
    theme, _ = HeuristicPlanner().theme(digests)
    assert theme.title.startswith("精彩集锦：") and has_cjk(theme.summary)
    assert "剪辑" in theme.title or "自动" in theme.title, theme
    english = [d.model_copy(update={"transcript_excerpt": "The new tool cuts long videos into short reels.",
                                    "language": "en"}) for d in digests]
    assert HeuristicPlanner().theme(english)[0].title.startswith("Highlights")


@pytest.mark.slow
@pytest.mark.skipif(not whisper_models.base_installed(), reason="speech extra not installed")
@pytest.mark.parametrize("clip", ["chinese_talk", "mixed_talk"])
def test_generated_mandarin_through_the_offline_flow(prefect_server, clip, request, tmp_path):
    """Real Mandarin (tests/mandarin.py) through the whole offline path: Whisper, the offline planner, the
    render and the SRT. Accuracy is scored by benchmarks/speech.py; here only what the output must be."""
    import json
    import re

    from autoclip.config import ClipOptions
    from autoclip.flows.auto_clip import auto_clip
    from autoclip.text import chinese_script

    spoken = request.getfixturevalue(clip)
    result = auto_clip(sources=[str(spoken.video)],
                       options=ClipOptions(target_duration=12, width=320, height=180, fps=15),
                       output=str(tmp_path / "咖啡.mp4"))
    assert result.duration >= 7, result  # most of the 12 s budget: each clip has more to give
    plan = json.loads(Path(result.plan).read_text(encoding="utf-8"))
    assert plan["planner"]["heuristic"] and plan["planner"]["model"] == "heuristic", plan["planner"]
    theme = plan["theme"]
    assert theme["title"].startswith("精彩集锦：") and has_cjk(theme["summary"]), theme
    topic = theme["title"] + " ".join(theme["keywords"])
    assert "咖啡" in topic or clip == "mixed_talk" and "coffee" in topic, theme  # what the talk is about

    srt = Path(result.subtitles).read_text(encoding="utf-8")
    blocks = [b.splitlines() for b in srt.strip().split("\n\n")]
    lines = [line for block in blocks for line in block[2:]]
    chinese = [line for line in lines if has_cjk(line)]
    assert chinese and (clip == "mixed_talk" or chinese == lines), lines
    assert all(len(block) - 2 <= MAX_LINES for block in blocks)
    assert all(display_width(line) <= LINE_WIDTH for line in lines), lines
    assert not [line for line in chinese if re.search(r"[\u4e00-\u9fff]\s+[\u4e00-\u9fff]", line)]  # no spaces
    text = "".join(chinese)
    assert chinese_script(text, "simplified") == text  # Simplified: nothing left to convert
    assert chinese_script(text, "traditional") != text  # ...and there were characters it would change
    heard = [c for c in text if has_cjk(c)]
    said = set(spoken.text)
    assert sum(c in said for c in heard) >= 0.7 * len(heard), text  # a sanity bound, not the CER score
