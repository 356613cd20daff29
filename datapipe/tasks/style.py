"""style: a reference poster from the same style group -> a new poster in that style.

The reference shares the style entry but not the entity or copy; the pair is verified
by colour similarity (style) and a minimum perceptual-hash distance (not a copy).
"""

from __future__ import annotations

from datapipe.details import clip_similarity, phash, phash_distance
from datapipe.images import load_rgb
from datapipe.recipe import StyleConfig
from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.tasks.common import (
    TaskContext,
    color_similarity,
    reference_mismatch,
    reference_sample,
)


def build_style(
    ctx: TaskContext, config: StyleConfig, group: Group, reference: Candidate, target: Candidate
) -> Sample | PairReject:
    mismatch = reference_mismatch("style", reference, target, "style_id")
    if mismatch:
        return mismatch
    scores = {
        "pair.color_similarity": color_similarity(
            load_rgb(reference.image), load_rgb(target.image)
        ),
        "pair.phash_distance": float(phash_distance(phash(reference), phash(target))),
        "pair.clip_similarity": clip_similarity(reference, target),
    }
    broken = ctx.check_pair("style", config, target, scores)
    if broken:
        return broken
    return reference_sample(ctx, "style", group, reference, target, scores)
