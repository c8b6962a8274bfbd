"""Text as people write it, in any language: words joined with or without spaces, sentence ends, terms
to match, and display width. Chinese and Japanese are written without spaces between words, so every
place that joins, splits, counts or matches words goes through here.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

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


def ends_sentence(text: str) -> bool:
    """Whether `text` ends a sentence (. ! ? and 。！？ alike, closing quotes allowed after them)."""
    stripped = text.rstrip().rstrip("\"'”’」』)）")
    return bool(stripped) and stripped.endswith(SENTENCE_END)


def display_width(text: str) -> int:
    """Columns `text` takes on screen: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
               for c in text)


@lru_cache(maxsize=1)
def _jieba():
    try:
        import jieba
    except ImportError:
        return None
    jieba.setLogLevel(60)  # its start-up chatter goes to stderr otherwise
    return jieba


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
