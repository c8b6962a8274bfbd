"""Text helpers on Chinese and English alike: joining, punctuation, script, wrapping, sentence ends, terms."""

from __future__ import annotations

import pytest

from autoclip.text import (chinese_script, cjk_punctuation, display_width, ends_sentence, join_words, terms,
                           wrap_words)


def test_words_join_without_spaces_in_chinese_and_with_spaces_in_english():
    assert join_words(["大家", "好，", "我的", "名字"]) == "大家好，我的名字"
    assert join_words(["Hello,", "my", "name", "is", "Ann."]) == "Hello, my name is Ann."
    assert join_words(["我们", "use", "AI", "做", "剪辑"]) == "我们use AI做剪辑"


def test_half_width_punctuation_after_chinese_becomes_full_width_but_not_in_numbers_or_latin():
    assert cjk_punctuation("大家好,我是小明.你呢?") == "大家好，我是小明。你呢？"
    assert cjk_punctuation("版本3.5,AutoCut.") == "版本3.5,AutoCut."
    assert cjk_punctuation("第3.5节") == "第3.5节"


def test_chinese_script_converts_both_ways_and_leaves_other_text_alone():
    assert chinese_script("這是一條測試的視頻") == "这是一条测试的视频"
    assert chinese_script("这是视频", "traditional") == "這是視頻"
    assert chinese_script("這是", "original") == "這是"
    assert chinese_script("Hello there") == "Hello there"
    with pytest.raises(ValueError, match="simplified, traditional, original"):
        chinese_script("這", "pinyin")


def test_sentence_ends_are_the_same_for_chinese_and_english():
    for text in ("这是视频。", "真的吗？", "太好了！", "It works.", "Really?", "他说：“好。”"):
        assert ends_sentence(text), text
    for text in ("我们今天", "大家好，", "and then", "AutoCut"):
        assert not ends_sentence(text), text


def test_display_width_counts_cjk_characters_as_two_columns():
    assert display_width("abc") == 3
    assert display_width("中文") == 4
    assert display_width("中a，") == 5


def test_wrapping_by_display_width_breaks_chinese_between_characters_and_english_between_words():
    chinese = ["今天", "我们", "来", "介绍", "一下", "这个", "自动", "剪辑", "工具", "的", "使用", "方法。"]
    lines = wrap_words(chinese, 12)
    assert "".join(lines) == "今天我们来介绍一下这个自动剪辑工具的使用方法。"
    assert all(display_width(line) <= 12 for line in lines) and len(lines) == 4
    long_word = wrap_words(["自动剪辑工具的使用方法"], 8)
    assert long_word == ["自动剪辑", "工具的使", "用方法"]
    english = wrap_words("the quick brown fox jumps over the lazy dog".split(), 15)
    assert english == ["the quick brown", "fox jumps over", "the lazy dog"]


def test_punctuation_never_starts_a_wrapped_line():
    lines = wrap_words(["一二三四", "，", "五六"], 8)
    assert not any(line[0] in "，。" for line in lines)
    assert "".join(lines) == "一二三四，五六"


def test_chinese_terms_are_words_from_segmentation():
    pytest.importorskip("jieba")
    found = terms("我们今天讨论人工智能和自动剪辑，人工智能可以帮助剪辑视频。")
    assert "人工智能" in found and "剪辑" in found and "视频" in found
    assert terms("Hello world 你好") [:2] == ["hello", "world"]
