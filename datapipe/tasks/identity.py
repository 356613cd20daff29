"""identity (subject-driven): the subject cut out with its own mask -> the poster.

The sample's mask is the cutout's alpha (same size as the source), so a model or a
check can tell the subject from the plain background around it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from datapipe.backends.procedural.renderer import hex_rgb
from datapipe.images import encode_png, load_mask, load_rgb, mask_to_png
from datapipe.recipe import IdentityConfig
from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.tasks.common import (
    TaskContext,
    copy_text,
    make_sample,
    reject,
    sample_meta,
    subject_name,
)

TASK = "identity"


def build_identity(
    ctx: TaskContext, config: IdentityConfig, group: Group, target: Candidate
) -> Sample | PairReject:
    spec = target.spec
    if target.subject_mask is None:
        return reject(TASK, target, "identity_no_mask", "the candidate has no subject mask")
    mask = load_mask(target.subject_mask)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return reject(TASK, target, "identity_no_mask", "the subject mask is empty")
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    pad = round(config.padding * max(x1 - x0, y1 - y0))
    image = np.asarray(load_rgb(target.image))
    height, width = (y1 - y0) + 2 * pad, (x1 - x0) + 2 * pad
    cutout = np.empty((height, width, 3), dtype=np.uint8)
    cutout[:] = hex_rgb(config.background)
    local = mask[y0:y1, x0:x1]
    region = cutout[pad : pad + (y1 - y0), pad : pad + (x1 - x0)]
    region[local] = image[y0:y1, x0:x1][local]
    cutout_mask = np.zeros((height, width), dtype=bool)
    cutout_mask[pad : pad + (y1 - y0), pad : pad + (x1 - x0)] = local
    key = f"{TASK}-{target.key}"
    rng = ctx.rng(TASK, key)
    instruction = ctx.instruction(
        TASK,
        spec.language,
        rng,
        entity=subject_name(ctx, target),
        style=spec.style_name,
        copy=copy_text(target),
    )
    params = {
        "subject_box": [int(x0), int(y0), int(x1), int(y1)],
        "padding": pad,
        "background": config.background,
        "mask_source": target.details.get("subject", {}).get("source"),
    }
    meta = sample_meta(ctx, TASK, group, target, [target], instruction, params)
    source = encode_png(Image.fromarray(cutout, mode="RGB"))
    return make_sample(
        ctx, TASK, key, target, [source], mask_to_png(cutout_mask), instruction, meta
    )
