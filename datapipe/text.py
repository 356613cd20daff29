"""Comparing copy text with what OCR read back."""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz.distance import Levenshtein


def normalize(text: str) -> str:
    """NFKC (full-width to half-width), case-folded, without white space.

    OCR drops the spaces between Chinese phrases and may read full-width punctuation
    as half-width; neither is a rendering error, so neither may lower a score.
    """
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def ned_similarity(expected: str, read: str) -> float:
    """1 - normalised edit distance of the normalised strings (1.0 = identical)."""
    a, b = normalize(expected), normalize(read)
    if not a and not b:
        return 1.0
    return float(Levenshtein.normalized_similarity(a, b))


_PUNCTUATION = set(
    "!\"#&'()*+,-./:;<=>?@[\\]^_`{|}~"  # ASCII (NFKC maps the full-width forms here)
    "·・。、「」『』《》〈〉“”‘’…—–―〜【】"  # CJK and typographic forms NFKC keeps
)
_NUMBER = re.compile(r"[$¥€£]?\d+(?:[.,:/\-]\d+)*%?")


def letters(text: str) -> str:
    """The text as the verifier compares it: `normalize`d, punctuation dropped.

    Written down once, because a verdict depends on it: NFKC folds full-width forms to
    half-width (Ａ->A, ：->:, １->1), case is folded, white space is dropped (OCR drops the
    space between Chinese phrases), and punctuation is dropped (OCR reads ， as , or
    drops an apostrophe; neither is a rendering error worth a pair), and so are accents
    on Latin letters (OCR reads C as Č on small text). Digits, letters, CJK glyphs and
    currency signs stay, so 299 vs 199, 日 vs 目 and E vs F all differ. Numbers are also
    compared whole by `numbers`, with their separators.
    """
    return "".join(_latin_base(c) for c in normalize(text) if c not in _PUNCTUATION)


def _latin_base(c: str) -> str:
    if not "\u00c0" <= c <= "\u024f":
        return c
    return "".join(d for d in unicodedata.normalize("NFD", c) if not unicodedata.combining(d))


def numbers(text: str) -> list[str]:
    """Prices, dates, counts and percentages, token by token (`$12`, `2026/11/27`, `15%`)."""
    return _NUMBER.findall(normalize(text))
