"""Typed reads of what one stage leaves on a candidate for another stage or a task
builder: the OCR line matches, the perceptual hash, the CLIP image embedding, the subject
box. `candidate.details` stays a JSON-able mapping (it is stored in the candidate store
as is); this module is the one place that knows its shape, so a reader never digs
through nested dicts by string keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import imagehash

from datapipe.records import Candidate

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class OcrLineMatch:
    """One copy line as the OCR stage matched it against what was read."""

    role: str
    expected: str
    read: str
    ned: float
    exact: bool
    found: bool
    box: Box | None
    """Union of the recognised boxes the line matched (None when not found)."""


def ocr_lines(candidate: Candidate) -> list[OcrLineMatch]:
    """The OCR stage's line matches, in copy order (empty when OCR did not run or failed)."""
    rows = candidate.details.get("ocr", {}).get("lines", [])
    return [
        OcrLineMatch(
            role=row["role"],
            expected=row["expected"],
            read=row["read"],
            ned=row["ned"],
            exact=row["exact"],
            found=row["found"],
            box=tuple(row["box"]) if row["box"] is not None else None,
        )
        for row in rows
    ]


def phash(candidate: Candidate) -> str | None:
    """The perceptual hash (hex) the phash stage stored; None when it did not run."""
    return candidate.details.get("phash")


def phash_distance(a: str, b: str) -> int:
    """Hamming distance between two stored hex hashes."""
    return imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b)


def clip_similarity(a: Candidate, b: Candidate) -> float | None:
    """Cosine of two stored image embeddings; None when either render has none."""
    ea = a.details.get("clip", {}).get("embedding")
    eb = b.details.get("clip", {}).get("embedding")
    if not ea or not eb:
        return None
    return round(sum(x * y for x, y in zip(ea, eb, strict=True)), 5)


def subject_box(candidate: Candidate) -> Box | None:
    """The subject's bounding box as the subject stage found it (None: no subject)."""
    box = candidate.details.get("subject", {}).get("box")
    return tuple(box) if box else None
