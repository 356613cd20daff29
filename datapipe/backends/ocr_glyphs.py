"""Glyph shapes: is each CJK glyph of a line drawn as that character, stroke for stroke?

A recogniser reads through a malformed glyph (a stroke band missing, half mirrored, a
stroke added): it was trained to read damaged print, so its confidence stays high. The
shape check compares each glyph's ink with the character drawn in reference fonts
(Noto Sans CJK, Bold and Regular, shipped as wheels). A poster's font differs from the
references, which moves every glyph of the line alike; a malformed glyph moves alone.
So a line's score is its worst glyph's distance above the line's median distance
(`ShapeCheck.outlier`), and the verdict is a recipe threshold on it. A font far from
the references (a brush or Kai face, a rounded display face) spreads every glyph's
distance as much as damage does: its lines are not scored (`MAX_MEDIAN`), so the check
covers the sans (hei) faces posters mostly use, and says where it did not look.

The glyph's place comes from the recogniser (the frame where it read the character),
its cell from the ink between two places (`cells`). Only CJK glyphs are scored: they
are square and one em wide, so a cell is known; a Latin letter's width depends on the
font, and its cut from the neighbours is not reliable enough to score.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from datapipe.fonts import font

SIDE = 32
"""Glyphs are compared as SIDE x SIDE ink maps, blurred so a stroke's weight matters less."""
WEIGHTS = ("bold", "regular")
MIN_GLYPHS = 3
"""A median needs three glyphs; a shorter line is not scored."""
MAX_MEDIAN = 0.1
"""A line whose median glyph is further than this from the references is set in a font
unlike them (measured: Noto Sans CJK lines <= 0.06 over 90 good lines at cluster sizes;
WenQuanYi Zen Hei 0.17-0.22, AR PL UKai 0.45-0.65), where one glyph's design can differ
from the reference as much as damage does: it is not scored (None), never rejected."""


def is_cjk(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff"


def _normalised(mask: np.ndarray) -> np.ndarray | None:
    """The ink cut to its extent (1-99 % of its pixels, so a speck does not widen it),
    centred in a square, scaled to SIDE, blurred, zero-mean and unit norm."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 8:
        return None
    y0, y1 = np.quantile(ys, [0.01, 0.99]).astype(int)
    x0, x1 = np.quantile(xs, [0.01, 0.99]).astype(int)
    ink = mask[y0 : y1 + 1, x0 : x1 + 1]
    h, w = ink.shape
    side = max(h, w)
    square = np.zeros((side, side), np.uint8)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = ink * 255
    small = Image.fromarray(square).resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    v = np.asarray(small.filter(ImageFilter.GaussianBlur(1.2)), np.float32)
    v = v - v.mean()
    norm = float(np.linalg.norm(v))
    return v / norm if norm else None


@lru_cache(maxsize=8192)
def reference(char: str, weight: str) -> np.ndarray | None:
    """The character drawn in a reference font, as a normalised ink map."""
    face = font(weight, 64)
    canvas = Image.new("L", (128, 128), 0)
    ImageDraw.Draw(canvas).text((24, 24), char, font=face, fill=255)
    return _normalised(np.asarray(canvas) > 128)


def ink_mask(crop: np.ndarray, pad: int) -> np.ndarray:
    """The line's ink: Otsu's split of the grey levels, the side that covers less of the
    line box (glyph strokes cover under half of it; the ground, a label behind the line
    or the poster beyond it cover the rest). The crop's `pad` around the box is ground."""
    grey = np.asarray(Image.fromarray(crop).convert("L"), np.uint8)
    hist = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    w = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    between = (mu[-1] * w - mu) ** 2 / (w * (1 - w) + 1e-12)
    dark = grey <= int(np.argmax(between))
    inner = np.zeros_like(dark)
    inner[pad : max(pad, dark.shape[0] - pad), pad : max(pad, dark.shape[1] - pad)] = True
    ink = dark if dark[inner].mean() < 0.5 else ~dark
    return ink & inner


@dataclass
class ShapeCheck:
    """Distances (1 - correlation with the nearest reference) of a line's CJK glyphs."""

    chars: str
    distances: list[float]

    @property
    def median(self) -> float | None:
        return round(float(np.median(self.distances)), 4) if self.distances else None

    @property
    def outlier(self) -> float | None:
        """Worst glyph's distance above the line's median; None under MIN_GLYPHS glyphs
        or in a font unlike the references (median over MAX_MEDIAN)."""
        median = self.median
        if len(self.distances) < MIN_GLYPHS or median is None or median > MAX_MEDIAN:
            return None
        return round(max(self.distances) - median, 4)

    @property
    def worst(self) -> str:
        return self.chars[int(np.argmax(self.distances))] if self.distances else ""


def _drop_long_parts(mask: np.ndarray, longest: float) -> np.ndarray:
    """Ink in connected parts wider or taller than `longest` is not a glyph's: the edge
    of a label behind the line, a rule, a frame that a levelled crop takes in. (scipy
    comes with imagehash, a core dependency.)"""
    from scipy import ndimage

    labels, _ = ndimage.label(mask)
    keep = np.ones(labels.max() + 1, bool)
    for index, part in enumerate(ndimage.find_objects(labels), start=1):
        if part is not None:
            rows, cols = part
            keep[index] = max(rows.stop - rows.start, cols.stop - cols.start) <= longest
    keep[0] = False
    return keep[labels]


def _thinnest(profile: np.ndarray) -> int:
    """The middle of the widest run of empty columns, else the column of least ink."""
    empty = np.concatenate([[0], (profile == 0).astype(np.int8), [0]])
    starts = np.nonzero(np.diff(empty) == 1)[0]
    ends = np.nonzero(np.diff(empty) == -1)[0]
    if len(starts) == 0:
        return int(np.argmin(profile))
    k = int(np.argmax(ends - starts))
    return int((starts[k] + ends[k]) // 2)


def cells(mask: np.ndarray, centres: list[float]) -> list[tuple[int, int]]:
    """Each glyph's columns: cut between two neighbours where the ink is thinnest, in the
    middle 70 % of the gap between their places (the recogniser's place of a glyph is
    biased to one side; the thinnest ink between two places is not); the first and the
    last glyph run to the line's ends."""
    profile = mask.sum(axis=0)
    width = mask.shape[1]
    cuts = []
    for a, b in pairwise(centres):
        lo = min(width - 1, max(0, int(a + (b - a) * 0.15)))
        hi = min(width - 1, max(lo, int(np.ceil(a + (b - a) * 0.85))))
        cuts.append(_thinnest(profile[lo : hi + 1]) + lo)
    edges = [0, *cuts, width]
    return list(pairwise(edges))


def check_shapes(crop: np.ndarray, text: str, centres: list[float], pad: int) -> ShapeCheck:
    """Score the CJK glyphs of `text` (read from `crop`; `centres` has one x per glyph,
    white space excluded) against the reference fonts. The crop's `pad` around the
    detected line box holds ground only: specks of a texture there are not ink."""
    glyphs = [c for c in text if not c.isspace()]
    if len(glyphs) != len(centres) or len(centres) < 2:
        return ShapeCheck("", [])
    advance = float(np.median(np.diff(centres)))
    # two glyphs whose strokes touch span two advances: they stay
    mask = _drop_long_parts(ink_mask(crop, pad), 2.2 * max(4.0, advance))
    if not mask.any():
        return ShapeCheck("", [])
    chars, distances = [], []
    for char, (x0, x1) in zip(glyphs, cells(mask, centres), strict=True):
        if not is_cjk(char):
            continue
        refs = [r for r in (reference(char, w) for w in WEIGHTS) if r is not None]
        v = _normalised(mask[:, x0:x1])
        if v is None or not refs:
            continue
        chars.append(char)
        distances.append(round(1.0 - max(float((v * r).sum()) for r in refs), 4))
    return ShapeCheck("".join(chars), distances)
