"""rescale: the same poster at ratio A -> at ratio B, re-laid-out, not stretched.

Built from a rescale group (one spec and seed rendered at two ratios), in both
directions, and verified from the pixels: the same text read back, the same subject
(the masked subject crops compared, tasks/subjects.py), similar colours.
"""

from __future__ import annotations

from datapipe.details import clip_similarity, ocr_lines
from datapipe.images import load_rgb
from datapipe.recipe import RescaleConfig
from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.tasks.common import TaskContext, color_similarity, make_sample, reject, sample_meta
from datapipe.tasks.subjects import subject_scores
from datapipe.text import ned_similarity

TASK = "rescale"
RESCALE_COLOUR_BINS = 8
"""One poster re-laid-out keeps its colours closely: a finer histogram than style's (which
compares two posters) tells a palette swapped for a near one (measured on procedural
twins: clean pairs >= 0.82, another palette <= 0.82, most under 0.7)."""


def read_lines(candidate: Candidate) -> dict[str, str]:
    return {line.role: line.read for line in ocr_lines(candidate)}


def text_match(a: Candidate, b: Candidate) -> float:
    """The lowest similarity between what OCR read on A and on B for each copy line."""
    lines_a, lines_b = read_lines(a), read_lines(b)
    if not lines_a or set(lines_a) != set(lines_b):
        return 0.0
    return round(min(ned_similarity(lines_a[r], lines_b[r]) for r in lines_a), 4)


def measure_rescale(
    _config: RescaleConfig, source: Candidate, target: Candidate
) -> dict[str, float | None] | PairReject:
    """The pair's scores, for the registry's rules; two specs with other copy are no pair."""
    scores: dict[str, float | None] = {
        "pair.text_match": text_match(source, target),
        **subject_scores(source, target),
        "pair.color_similarity": color_similarity(
            load_rgb(source.image), load_rgb(target.image), RESCALE_COLOUR_BINS
        ),
        "pair.clip_similarity": clip_similarity(source, target),
    }
    if [(c.role, c.text) for c in source.spec.copy] != [(c.role, c.text) for c in target.spec.copy]:
        return reject(
            TASK, target, "rescale_copy_differs", "the two specs carry different copy", **scores
        )
    return scores


def build_rescale(
    ctx: TaskContext,
    group: Group,
    source: Candidate,
    target: Candidate,
    scores: dict[str, float | None],
) -> Sample:
    spec = target.spec
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
