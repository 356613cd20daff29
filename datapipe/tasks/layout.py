"""layout: a reference poster from the same layout group -> a poster with that layout.

The reference shares the layout spec but not the entity, copy or style. Its slots are
what was detected on it, never what its renderer says it drew: each copy line where
OCR found it (by role) and the subject where its mask lies. The pair is verified by
placing the target's detected elements against the reference's of the same role: a
line sits in its slot when its centre row matches and it is set in the same column
(copy of another length, flush left in one style and centred in another, moves a line
about within its column, not out of it); the subject when its box's centre is near the
reference subject's. The target must also show another subject than the reference (not
a copy of it).
"""

from __future__ import annotations

from datapipe.details import ocr_lines, subject_box
from datapipe.recipe import LayoutConfig
from datapipe.records import Candidate, PairReject
from datapipe.tasks.common import (
    reference_builder,
    reference_mismatch,
)
from datapipe.tasks.subjects import subject_scores

Box = tuple[float, float, float, float]


def _normalised(box: list[int] | tuple[int, ...], candidate: Candidate) -> Box:
    w, h = candidate.spec.width, candidate.spec.height
    return (box[0] / w, box[1] / h, box[2] / w, box[3] / h)


def _columns(lines: list[Box]) -> list[Box]:
    """Each line widened to the column it is set in: the span of every line it overlaps
    side by side. Copy of another length, set flush left, centred or flush right, moves a
    line about within its column; the column stays where the layout put it."""
    out = []
    for line in lines:
        stacked = [o for o in lines if min(o[2], line[2]) > max(o[0], line[0])]
        out.append((min(o[0] for o in stacked), line[1], max(o[2] for o in stacked), line[3]))
    return out


def detected_slots(candidate: Candidate) -> dict[str, Box]:
    """Role -> the column and rows where that copy line was read, and "subject" -> the
    subject mask's box, as shares of the poster's width and height."""
    read = [
        (line.role, _normalised(line.box, candidate))
        for line in ocr_lines(candidate)
        if line.found and line.box
    ]
    slots = dict(zip((role for role, _ in read), _columns([box for _, box in read]), strict=True))
    box = subject_box(candidate)
    if box:
        slots["subject"] = _normalised(box, candidate)
    return slots


def _line_offset(a: Box, b: Box) -> float:
    """How far line `a` sits from slot `b`: its centre row, when their columns overlap
    (a line in another column is out of its slot however close its row)."""
    if min(a[2], b[2]) <= max(a[0], b[0]):
        return 1.0
    return abs((a[1] + a[3]) - (b[1] + b[3])) / 2


def _centre_offset(a: Box, b: Box) -> float:
    return max(abs((a[0] + a[2]) - (b[0] + b[2])) / 2, abs((a[1] + a[3]) - (b[1] + b[3])) / 2)


def layout_match(reference: Candidate, target: Candidate, tolerance: float) -> float:
    """Share of the reference's slots (its lines by role, its subject) that the target
    fills within `tolerance`; a slot the target lacks, or fills elsewhere, counts 0."""
    slots = detected_slots(reference)
    placed = detected_slots(target)
    if not slots:
        return 0.0
    hits = 0
    for role, slot in slots.items():
        element = placed.get(role)
        if element is None:
            continue
        offset = _centre_offset if role == "subject" else _line_offset
        hits += offset(element, slot) <= tolerance
    return round(hits / len(slots), 4)


def measure_layout(
    config: LayoutConfig, reference: Candidate, target: Candidate
) -> dict[str, float | None] | PairReject:
    mismatch = reference_mismatch("layout", reference, target, "layout_id")
    if mismatch:
        return mismatch
    return {
        "pair.layout_match": layout_match(reference, target, config.tolerance),
        **subject_scores(reference, target),
    }


build_layout = reference_builder("layout")
"""The sample: the reference as the source, the target as the poster to make."""
