"""style: a reference poster from the same style group -> a new poster in that style.

The reference shares the style entry but not the entity or copy; the pair is verified
by colour similarity (palette), the background's texture (motif: dots, stripes, a
grid ...), a minimum perceptual-hash distance (not a copy) and the masked subject crops
(tasks/subjects.py): the target must show another subject.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from datapipe.details import clip_similarity, ocr_lines, phash_distance
from datapipe.images import BadImageError, load_mask, load_rgb
from datapipe.recipe import StyleConfig
from datapipe.records import Candidate, PairReject
from datapipe.tasks.common import (
    color_similarity,
    reference_builder,
    reference_mismatch,
)
from datapipe.tasks.subjects import subject_scores

TEXTURE_SIDE = 192
ORIENTATIONS = 8
BAND = 0.15
"""The motif is read where it shows most: a band this deep (share of the short side)
along the edges, less the subject and the copy."""
EDGE = 6.0
"""Gradient (in the colour channel where it is steepest) above which a background pixel
counts as an edge of the motif, read after a 3x3 median: a film grain over the ground is
not a motif, a faint one is. In colour, not grey: a motif drawn in a hue of the ground's
brightness (yellow stripes on beige) shows to the eye and vanishes in grey levels."""
DENSITY_FLOOR = 0.02
"""Added to both edge densities before their ratio: plain grounds agree."""
DIRECTED = 0.05
"""Edge density at which the edges' directions count in full; below it, in proportion
(a few stray edges on a plain ground point anywhere)."""


def background_texture(candidate: Candidate) -> np.ndarray | None:
    """The motif's signature: where the poster shows its ground (no subject, no copy
    line), the share of edge pixels and their orientations; None for a broken image."""
    try:
        image = load_rgb(candidate.image)
    except BadImageError:
        return None
    scale = TEXTURE_SIDE / max(image.size)
    size = (max(8, round(image.width * scale)), max(8, round(image.height * scale)))
    small = image.resize(size, Image.Resampling.BOX).filter(ImageFilter.MedianFilter(3))
    channels = np.moveaxis(np.asarray(small, dtype=np.float64), -1, 0)
    ground = np.zeros(channels.shape[1:], dtype=bool)
    h, w = ground.shape
    band = max(4, round(BAND * min(h, w)))
    ground[:band], ground[-band:], ground[:, :band], ground[:, -band:] = True, True, True, True
    if candidate.subject_mask is not None:
        subject = Image.fromarray(load_mask(candidate.subject_mask)).resize(size)
        ground &= ~np.asarray(subject)
    for line in ocr_lines(candidate):
        if line.found and line.box is not None:
            x0, y0, x1, y1 = (round(v * scale) for v in line.box)
            ground[max(0, y0 - 2) : y1 + 2, max(0, x0 - 2) : x1 + 2] = False
    gy, gx = np.gradient(channels, axis=(1, 2))
    strongest = np.hypot(gx, gy).argmax(axis=0)[None]
    gy, gx = np.take_along_axis(gy, strongest, 0)[0], np.take_along_axis(gx, strongest, 0)[0]
    edges = ground & (np.hypot(gx, gy) > EDGE)
    angle = (np.arctan2(gy, gx) % np.pi) / np.pi * ORIENTATIONS
    bins = np.minimum(angle[edges].astype(int), ORIENTATIONS - 1)
    orientations = np.bincount(bins, minlength=ORIENTATIONS).astype(np.float64)
    orientations /= max(1.0, orientations.sum())
    density = edges.sum() / max(1, ground.sum())
    return np.concatenate([[density], orientations])


def _directions(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two orientation histograms, the best over turning and mirroring one:
    a motif's direction follows the poster's ratio and the renderer's dice (stripes at
    30 or 60 degrees, either way), its kind does not (one peak, two at right angles, none)."""
    return max(
        float(np.minimum(a, np.roll(turned, k)).sum())
        for turned in (b, b[::-1])
        for k in range(len(b))
    )


def motif_similarity(a: Candidate, b: Candidate) -> float | None:
    """1 for the same background texture: edge densities alike and edges of the same
    kind of directions (a plain ground and a plain ground agree; dots and stripes do not).
    Measured on the fidelity benchmark's style pairs (benchmarks/fidelity_pairs.py)."""
    ta, tb = background_texture(a), background_texture(b)
    if ta is None or tb is None:
        return None
    low, high = sorted((float(ta[0]), float(tb[0])))
    density = (low + DENSITY_FLOOR) / (high + DENSITY_FLOOR)
    weight = min(1.0, low / DIRECTED)
    directions = 1.0 - weight * (1.0 - _directions(ta[1:], tb[1:]))
    return round(min(density, directions), 4)


def measure_style(
    _config: StyleConfig, reference: Candidate, target: Candidate
) -> dict[str, float | None] | PairReject:
    mismatch = reference_mismatch("style", reference, target, "style_id")
    if mismatch:
        return mismatch
    return {
        "pair.color_similarity": color_similarity(
            load_rgb(reference.image), load_rgb(target.image)
        ),
        "pair.phash_distance": float(
            phash_distance(reference.details["phash"], target.details["phash"])
        ),
        "pair.clip_similarity": clip_similarity(reference, target),
        "pair.motif_similarity": motif_similarity(reference, target),
        **subject_scores(reference, target),
    }


build_style = reference_builder("style")
"""The sample: the reference as the source, the target as the poster to make."""
