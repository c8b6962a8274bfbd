"""Text as people write it, in any language: words joined with or without spaces, sentence ends, terms
to match, and display width. Chinese and Japanese are written without spaces between words, so every
place that joins, splits, counts or matches words goes through here.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from autoclip.memory import droppable

# Ideographs, kana, hangul syllables and the CJK punctuation block: scripts where words touch.
_CJK = re.compile(r"[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\uac00-\ud7af]")
SENTENCE_END = tuple(".!?。！？…")
_LATIN_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)


def is_cjk(char: str) -> bool:
    return bool(char) and bool(_CJK.match(char))


def join_words(words: list[str]) -> str:
    """Words as one text: a space between two words only where neither side is CJK ('欢迎来到', 'hello world',
    '我们 use AI' keeps the space before Latin text only where the speaker's words had one)."""
    out = ""
    for word in (w.strip() for w in words):
        if not word:
            continue
        if out and not (is_cjk(out[-1]) or is_cjk(word[0])) and not _closing_punctuation(word[0]):
            out += " "
        out += word
    return out


def _closing_punctuation(char: str) -> bool:
    return unicodedata.category(char) in {"Po", "Pe", "Pf"} and char not in "¿¡"


_FULL_WIDTH = str.maketrans({",": "，", ".": "。", "!": "！", "?": "？", ":": "：", ";": "；"})


def cjk_punctuation(text: str) -> str:
    """Half-width , . ! ? : ; right after a CJK character made full-width, as Chinese is written (speech
    models often emit '大家好,'); '3.5' and 'AutoCut.' are left alone."""
    return "".join(c.translate(_FULL_WIDTH) if i and is_cjk(text[i - 1]) and not _digit_after(text, i) else c
                   for i, c in enumerate(text))


def _digit_after(text: str, i: int) -> bool:
    return i + 1 < len(text) and text[i + 1].isdigit()


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


CHINESE_SCRIPTS = ("simplified", "traditional", "original")


@lru_cache(maxsize=2)
def _converter(config: str):
    """An OpenCC converter: `opencc-python-reimplemented` takes 't2s', the `opencc` wheel 't2s.json'."""
    try:
        from opencc import OpenCC
    except ImportError:
        return None
    for name in (config, f"{config}.json"):
        try:
            return OpenCC(name)
        except Exception:  # the two packages reject each other's config names with different errors
            continue
    return None


def chinese_script(text: str, script: str = "simplified") -> str:
    """Chinese `text` in Simplified or Traditional characters ('original' keeps what the model wrote).
    Speech models mix both; without OpenCC installed the text is returned as it is."""
    if script not in CHINESE_SCRIPTS:
        raise ValueError(f"Chinese script must be one of {', '.join(CHINESE_SCRIPTS)}, got {script!r}")
    if script == "original" or not has_cjk(text):
        return text
    converter = _converter("t2s" if script == "simplified" else "s2t")
    return converter.convert(text) if converter else text


def ends_sentence(text: str) -> bool:
    """Whether `text` ends a sentence (. ! ? and 。！？ alike, closing quotes allowed after them)."""
    stripped = text.rstrip().rstrip("\"'”’」』)）")
    return bool(stripped) and stripped.endswith(SENTENCE_END)


def display_width(text: str) -> int:
    """Columns `text` takes on screen: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
               for c in text)


def wrap_words(words: list[str], width: int) -> list[str]:
    """Words joined as `join_words` does, broken into lines of at most `width` columns (CJK characters
    count two), between words; a word wider than a line is broken between its characters (Chinese has no
    spaces to wait for), and punctuation never starts a line."""
    lines: list[str] = []
    line: list[str] = []
    for word in (w.strip() for w in words):
        if not word:
            continue
        if line and display_width(join_words(line + [word])) > width and not _closing_punctuation(word[0]):
            lines.append(join_words(line))
            line = []
        if not line and display_width(word) > width:
            pieces = _break_word(word, width)
            lines += pieces[:-1]
            word = pieces[-1]
        line.append(word)
    if line:
        lines.append(join_words(line))
    return lines


def _break_word(word: str, width: int) -> list[str]:
    pieces, piece = [], ""
    for char in word:
        if piece and display_width(piece + char) > width and not _closing_punctuation(char):
            pieces.append(piece)
            piece = ""
        piece += char
    return pieces + [piece]


@droppable
@lru_cache(maxsize=1)
def _jieba():
    """A jieba segmenter of our own (its dictionary, ~90 MB once loaded, goes with `drop_models`)."""
    try:
        import jieba
    except ImportError:
        return None
    jieba.setLogLevel(60)  # its start-up chatter goes to stderr otherwise
    return jieba.Tokenizer()


def terms(text: str) -> list[str]:
    """Words to count and match, lower-cased: Latin words by letters, CJK runs by word segmentation (jieba
    when installed, else overlapping character pairs, which still match across texts)."""
    out: list[str] = []
    for run in re.split(r"(" + _CJK.pattern + r"+)", text):
        if not run:
            continue
        if _CJK.match(run[0]):
            out += _cjk_terms(run)
        else:
            out += [w.lower() for w in _LATIN_WORD.findall(run)]
    return out


def _cjk_terms(run: str) -> list[str]:
    run = "".join(c for c in run if unicodedata.category(c)[0] in "LN")
    jieba = _jieba()
    if jieba is not None:
        return [w for w in jieba.lcut(run) if w.strip()]
    return [run[i:i + 2] for i in range(len(run) - 1)] or ([run] if run else [])
