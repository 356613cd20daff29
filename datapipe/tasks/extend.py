"""extend (outpainting): a crop that holds the subject -> the full poster.

The crop covers a seeded share of the poster's area inside the recipe's bounds, keeps
or changes the aspect ratio, always contains the whole subject box, and is either
placed where it was on a blank canvas of the target size ("canvas") or given alone
with the target size in the instruction ("crop").
"""

from __future__ import annotations

import math

from PIL import Image

from datapipe.details import subject_box
from datapipe.images import encode_png, load_rgb
from datapipe.recipe import ExtendConfig
from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.tasks.common import TaskContext, make_sample, reject, sample_meta, subject_name

TASK = "extend"
CANVAS_FILL = (255, 255, 255)


def crop_box(
    width: int,
    height: int,
    subject: tuple[int, int, int, int],
    area: float,
    aspect: float,
    rng_x: float,
    rng_y: float,
) -> tuple[int, int, int, int]:
    """A crop of `area` (share of the poster) at `aspect` (w/h) that contains `subject`."""
    w = min(width, max(subject[2] - subject[0], round(math.sqrt(area * width * height * aspect))))
    h = min(height, max(subject[3] - subject[1], round(w / aspect)))
    x_lo, x_hi = max(0, subject[2] - w), min(subject[0], width - w)
    y_lo, y_hi = max(0, subject[3] - h), min(subject[1], height - h)
    x0 = x_lo + round((x_hi - x_lo) * rng_x)
    y0 = y_lo + round((y_hi - y_lo) * rng_y)
    return (x0, y0, x0 + w, y0 + h)


def build_extend(
    ctx: TaskContext, config: ExtendConfig, group: Group, target: Candidate
) -> Sample | PairReject:
    spec = target.spec
    box = subject_box(target)
    if box is None:
        return reject(TASK, target, "extend_no_subject", "no subject box to keep in the crop")
    key = f"{TASK}-{target.key}"
    rng = ctx.rng(TASK, key)
    lo, hi = config.area
    area = rng.uniform(lo, hi)
    aspect = spec.width / spec.height
    changed = rng.random() < config.change_aspect
    if changed:
        aspect *= rng.choice((0.6, 0.75, 1.33, 1.6))
    crop = crop_box(spec.width, spec.height, box, area, aspect, rng.random(), rng.random())
    share = (crop[2] - crop[0]) * (crop[3] - crop[1]) / (spec.width * spec.height)
    if not lo - 0.01 <= share <= hi + 0.01:
        return reject(
            TASK,
            target,
            "extend_crop_out_of_range",
            f"a crop holding the subject covers {share:.2f} of the poster, outside [{lo}, {hi}]",
            crop_area=round(share, 4),
        )
    mode = rng.choice(config.modes)
    image = load_rgb(target.image)
    piece = image.crop(crop)
    if mode == "canvas":
        source = Image.new("RGB", image.size, CANVAS_FILL)
        source.paste(piece, crop[:2])
    else:
        source = piece
    instruction = ctx.instruction(
        f"extend_{mode}",
        spec.language,
        rng,
        entity=subject_name(ctx, target),
        width=spec.width,
        height=spec.height,
        ratio=spec.aspect_ratio,
    )
    params = {
        "mode": mode,
        "crop_box": list(crop),
        "crop_area": round(share, 4),
        "aspect_changed": changed,
    }
    meta = sample_meta(ctx, TASK, group, target, [target], instruction, params)
    return make_sample(ctx, TASK, key, target, [encode_png(source)], None, instruction, meta)
