"""layout: a reference poster from the same layout group -> a poster with that layout.

The reference shares the layout spec but not the entity, copy or style; the pair is
verified by checking that the target's detected text and subject boxes sit inside
the reference's layout slots.
"""

from __future__ import annotations

from datapipe.details import ocr_lines, subject_box
from datapipe.recipe import LayoutConfig
from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.tasks.common import (
    TaskContext,
    box_iou_inside,
    reference_mismatch,
    reference_sample,
)


def _normalised(box: tuple[int, ...], candidate: Candidate) -> tuple[float, ...]:
    w, h = candidate.spec.width, candidate.spec.height
    return (box[0] / w, box[1] / h, box[2] / w, box[3] / h)


def layout_match(reference: Candidate, target: Candidate) -> float:
    """Mean share of each detected target element inside the reference's matching slot."""
    slots = reference.truth.layout_boxes if reference.truth else {}
    if not slots:
        return 0.0
    shares = []
    for i, line in enumerate(ocr_lines(target)):
        if not line.found:
            shares.append(0.0)
            continue
        slot = slots["title"] if i == 0 else slots["body"]
        shares.append(box_iou_inside(_normalised(line.box, target), _normalised(slot, reference)))
    box = subject_box(target)
    shares.append(
        box_iou_inside(_normalised(box, target), _normalised(slots["subject"], reference))
        if box
        else 0.0
    )
    return round(sum(shares) / len(shares), 4)


def build_layout(
    ctx: TaskContext, config: LayoutConfig, group: Group, reference: Candidate, target: Candidate
) -> Sample | PairReject:
    mismatch = reference_mismatch("layout", reference, target, "layout_id")
    if mismatch:
        return mismatch
    scores = {"pair.layout_match": layout_match(reference, target)}
    broken = ctx.check_pair("layout", config, target, scores)
    if broken:
        return broken
    return reference_sample(ctx, "layout", group, reference, target, scores)
