"""Comparing copy text with what OCR read back."""

from __future__ import annotations

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
