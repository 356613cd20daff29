"""rescale: the same poster at ratio A -> at ratio B, re-laid-out, not stretched.

Built from a rescale group (one spec and seed rendered at two ratios), in both
directions, and verified: the same text read back, the same subject, similar colours.
"""

from __future__ import annotations

from datapipe.details import clip_similarity, ocr_lines
from datapipe.images import load_rgb
from datapipe.recipe import RescaleConfig
from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.tasks.common import TaskContext, color_similarity, make_sample, reject, sample_meta
from datapipe.text import ned_similarity

TASK = "rescale"


def read_lines(candidate: Candidate) -> dict[str, str]:
    return {line.role: line.read for line in ocr_lines(candidate)}


def text_match(a: Candidate, b: Candidate) -> float:
    """The lowest similarity between what OCR read on A and on B for each copy line."""
    lines_a, lines_b = read_lines(a), read_lines(b)
    if not lines_a or set(lines_a) != set(lines_b):
        return 0.0
    return round(min(ned_similarity(lines_a[r], lines_b[r]) for r in lines_a), 4)


def build_rescale(
    ctx: TaskContext, config: RescaleConfig, group: Group, source: Candidate, target: Candidate
) -> Sample | PairReject:
    spec = target.spec
    same_copy = [(c.role, c.text) for c in source.spec.copy] == [
        (c.role, c.text) for c in spec.copy
    ]
    scores = {
        "pair.text_match": text_match(source, target),
        "pair.same_subject": float(
            source.spec.entity_id == spec.entity_id
            and source.scores.get("subject.area", 0) > 0
            and target.scores.get("subject.area", 0) > 0
        ),
        "pair.color_similarity": color_similarity(load_rgb(source.image), load_rgb(target.image)),
        "pair.clip_similarity": clip_similarity(source, target),
    }
    if not same_copy:
        return reject(
            TASK, target, "rescale_copy_differs", "the two specs carry different copy", **scores
        )
    broken = ctx.check_pair(TASK, config, target, scores)
    if broken:
        return broken
    key = f"{TASK}-{target.key}-from{source.spec.member}"
    rng = ctx.rng(TASK, key)
    instruction = ctx.instruction(
        TASK, spec.language, rng, width=spec.width, height=spec.height, ratio=spec.aspect_ratio
    )
    params = {
        "source_size": [source.spec.width, source.spec.height],
        "target_size": [spec.width, spec.height],
        "source_ratio": source.spec.aspect_ratio,
        "target_ratio": spec.aspect_ratio,
    }
    meta = sample_meta(ctx, TASK, group, target, [source], instruction, params, scores)
    return make_sample(ctx, TASK, key, target, [source.image], None, instruction, meta)
