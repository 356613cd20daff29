"""style: a reference poster from the same style group -> a new poster in that style.

The reference shares the style entry but not the entity or copy; the pair is verified
by colour similarity (style), a minimum perceptual-hash distance (not a copy) and the
masked subject crops (tasks/subjects.py): the target must show another subject.
"""

from __future__ import annotations

from datapipe.images import load_rgb
from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.stages.clip import clip_similarity
from datapipe.stages.phash import phash_distance
from datapipe.tasks.common import (
    TaskContext,
    color_similarity,
    reference_mismatch,
    reference_sample,
    reject,
)
from datapipe.tasks.subjects import subject_limit, subject_similarity


def build_style(
    ctx: TaskContext, group: Group, reference: Candidate, target: Candidate
) -> Sample | PairReject:
    config = ctx.recipe.tasks.style
    mismatch = reference_mismatch("style", reference, target, "style_id")
    if mismatch:
        return mismatch
    scores = {
        "pair.color_similarity": color_similarity(
            load_rgb(reference.image), load_rgb(target.image)
        ),
        "pair.phash_distance": float(
            phash_distance(reference.details["phash"], target.details["phash"])
        ),
        "pair.clip_similarity": clip_similarity(reference, target),
    }
    subject, method = subject_similarity(reference, target)
    scores["pair.subject_similarity"] = subject
    if scores["pair.color_similarity"] < config.min_color_similarity:
        detail = (
            f"colour similarity {scores['pair.color_similarity']} < {config.min_color_similarity}"
        )
        return reject("style", target, "style_color_mismatch", detail, **scores)
    if scores["pair.phash_distance"] < config.min_phash_distance:
        detail = f"phash distance {scores['pair.phash_distance']:g} < {config.min_phash_distance}"
        return reject("style", target, "style_near_duplicate", detail, **scores)
    ceiling = config.max_clip_similarity
    clip = scores["pair.clip_similarity"]
    if ceiling is not None and (clip is None or clip > ceiling):
        detail = f"CLIP image similarity {clip} > {ceiling}: a near-copy of the reference"
        return reject("style", target, "style_near_duplicate", detail, **scores)
    ceiling = subject_limit(
        method, config.max_subject_similarity, config.max_subject_clip_similarity
    )
    if subject is not None and subject > ceiling:
        detail = f"subject similarity ({method}) {subject} > {ceiling}: the reference's subject"
        return reject("style", target, "style_same_subject", detail, **scores)
    return reference_sample(ctx, "style", group, reference, target, scores)
