"""QualityStage: numbers that catch blank, low-contrast and collapsed images.

A collapsed render (a diffusion model's failure where everything piles into one
corner on a flat ground) shows as detail confined to a small part of the frame, so
besides global statistics the stage measures where the detail is.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from PIL import Image

from datapipe.records import Candidate
from datapipe.stages.base import CandidateStage, Resources

GRID = 12
TILE_STD_FLOOR = 6.0
QUIET_SHARE = 0.25
"""The share of tiles taken as the ground: a poster's copy and subject leave at least this."""
GROUND_FACTOR = 2.0
"""Detail counts where a tile varies this many times more than the ground does."""


class QualityStage(CandidateStage):
    name = "quality"
    resources: ClassVar[Resources] = Resources(cpus=0.5)
    batch_size: ClassVar[int] = 4
    produces: ClassVar[tuple[str, ...]] = (
        "quality.std",
        "quality.contrast",
        "quality.colorfulness",
        "quality.detail_coverage",
        "quality.content_extent",
    )

    def annotate(self, candidate: Candidate, image: Image.Image) -> None:
        rgb = np.asarray(image, dtype=np.float32)
        gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        low, high = np.percentile(gray, [2, 98])
        rg = rgb[..., 0] - rgb[..., 1]
        yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
        colorfulness = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
        active = tile_activity(gray)
        rows, cols = np.nonzero(active)
        extent = 0.0
        if len(rows):
            extent = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1) / active.size
        s = candidate.scores
        s["quality.std"] = round(float(gray.std()), 4)
        s["quality.contrast"] = round(float(high - low) / 255.0, 4)
        s["quality.colorfulness"] = round(float(colorfulness), 4)
        s["quality.detail_coverage"] = round(float(active.mean()), 4)
        s["quality.content_extent"] = round(float(extent), 4)


def tile_activity(gray: np.ndarray) -> np.ndarray:
    """GRID x GRID booleans: does the tile hold detail (local std above a floor)?

    The floor rises with the image's own ground: a grainy or textured background (paper,
    film grain, a diffusion model's noise) is busy everywhere, and only detail well above
    the quietest quarter of the tiles counts, or a collapsed render on a textured ground
    would look as if it filled the frame."""
    h, w = gray.shape
    ys = np.linspace(0, h, GRID + 1).astype(int)
    xs = np.linspace(0, w, GRID + 1).astype(int)
    stds = np.zeros((GRID, GRID), dtype=np.float64)
    for i in range(GRID):
        for j in range(GRID):
            tile = gray[ys[i] : ys[i + 1], xs[j] : xs[j + 1]]
            stds[i, j] = float(tile.std()) if tile.size else 0.0
    ground = float(np.percentile(stds, QUIET_SHARE * 100))
    return stds > max(TILE_STD_FLOOR, GROUND_FACTOR * ground)
