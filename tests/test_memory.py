"""Models a stage loaded are dropped when it is over, and the memory they held goes back to the system."""

import pytest

from autoclip import text
from autoclip.memory import drop_models, give_back


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_word_segmenter_is_dropped_and_comes_back_on_use():
    pytest.importorskip("jieba")
    assert text.terms("这是一条用于测试的视频")
    assert text._jieba.cache_info().currsize == 1
    drop_models()
    assert text._jieba.cache_info().currsize == 0
    assert "测试" in text.terms("这是一条用于测试的视频")  # loaded again when needed


def test_dropping_the_sentence_encoder_gives_its_memory_back():
    from autoclip.planning import meaning

    if not meaning.available():
        pytest.skip("the judge extra is not installed")
    drop_models()
    before = _rss_mb()
    meaning.embed(["the robots raced", "I need milk"])
    loaded = _rss_mb()
    drop_models()
    after = _rss_mb()
    assert loaded - before > 50  # the model is not small: otherwise this test measures nothing
    assert after - before < (loaded - before) / 2, (before, loaded, after)


def test_give_back_is_safe_to_call_any_time():
    give_back()
    give_back()
