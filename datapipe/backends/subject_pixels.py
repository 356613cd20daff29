"""A subject mask from the pixels alone: the offline segmenter (no model, no truth).

A poster's background is what its borders show: a flat colour, a gradient or a small
pattern in the style's palette. Everything that differs from every border colour and
lies outside the text the OCR stage found is foreground; the subject is the largest
solid connected piece of it (with the pieces near its size). The segmenter reports how sure it
is (`confidence`), from how much of the foreground that piece holds, how solid it is,
whether it stays the same at a stricter colour tolerance and how little of it shows the
ground's own colours (a piece that closed around ground, such as the holes of a reel or a
background disc fused to the subject, is no clean cut): the recipe's `subject_uncertain`
rule rejects a render whose mask should not be trusted, before a fill or identity pair
is cut from it. It needs OpenCV, which RapidOCR (a core dependency) installs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

VERSION = "pixels-2"
WORK_SIDE = 384
"""The mask is found on a copy with this long side, then scaled back."""
BORDER = 0.03
"""Share of each side sampled as background."""
BACKGROUND_COLOURS = 12
"""k-means centres the border's colours are summarised by."""
FOREGROUND_DISTANCE = 10.0
"""Lab distance from the nearest background colour above which a pixel is foreground."""
FRAME_SPAN = 0.9
"""A piece this wide and this tall (shares of the poster) is a drawn frame."""
FRAMED = 0.3
"""A field of border colour this large is ground even where a frame cuts it off."""
MIN_PART = 0.1
"""A piece of foreground joins the subject when at least this share of the largest..."""
MIN_AREA = 0.002
"""... and of the image (a lamp's rays, a second firework; not confetti)."""
TEXT_PAD = 0.35
"""OCR boxes are grown by this share of their height (labels behind a line included)."""
GROUND_INSIDE_OK = 0.15
"""Share of a mask's pixels in a border colour that costs no confidence; above it the
confidence falls in proportion. On the fidelity benchmark's kept renders the two masks
under 0.75 IoU held 0.27 and 0.51 of ground colour (a reel with its holes filled, a bird
fused to a background disc); 161 of 179 masks at IoU >= 0.9 hold under 0.15, and the
few above it (subjects drawn partly in the ground's colours) are the price: 5 of 209
kept masks at IoU >= 0.75 fall under subject_uncertain's 0.85."""


@dataclass
class PixelMask:
    mask: np.ndarray
    """bool, image size; empty when nothing stands out from the background."""
    confidence: float
    """0..1: share of the foreground in the chosen pieces x their solidity x how well the
    mask agrees with the one found at half the colour tolerance x how little of it is in
    the ground's colours (`ground_inside`)."""
    reason: str
    ground_inside: float = 0.0
    """Share of the mask's pixels whose colour is one of the border's."""


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32) * np.array(
        [100 / 255, 1, 1], dtype=np.float32
    )


def _border_colours(lab: np.ndarray) -> np.ndarray:
    import cv2

    h, w = lab.shape[:2]
    b = max(2, round(BORDER * min(h, w)))
    band = np.concatenate(
        [
            lab[:b].reshape(-1, 3),
            lab[-b:].reshape(-1, 3),
            lab[:, :b].reshape(-1, 3),
            lab[:, -b:].reshape(-1, 3),
        ]
    )
    k = min(BACKGROUND_COLOURS, len(band))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(band, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    return centres


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def _piece(
    distance: np.ndarray, text: np.ndarray, threshold: float
) -> tuple[np.ndarray, float] | str:
    """The subject at one colour tolerance and the share of the foreground it holds, or
    why there is none.

    Background is every pixel of a border colour that the border reaches through such
    pixels (text counts as passable), or that lies in a large enough field of them (the
    ground inside a drawn frame): an outlined subject is not reached, whatever its fill.
    What is left, less specks and frames, is the subject.
    """
    import cv2

    passable = ((distance <= threshold) | text).astype(np.uint8)
    count, fields, stats, _ = cv2.connectedComponentsWithStats(passable, connectivity=4)
    edge = np.unique(np.concatenate([fields[0], fields[-1], fields[:, 0], fields[:, -1]]))
    inside_frame = np.nonzero(stats[:, cv2.CC_STAT_AREA] >= FRAMED * passable.size)[0]
    ground = set(np.union1d(edge, inside_frame).tolist()) - {0}
    foreground = ~np.isin(fields, sorted(ground)) & ~text
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        foreground.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return "nothing stands out from the border colours"
    # A piece's weight is what survives an opening (its body, not its outline or specks);
    # the mask keeps the whole piece, thin parts (a lamp's pole, a globe's stand) included.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    opened = cv2.morphologyEx(foreground.astype(np.uint8), cv2.MORPH_OPEN, kernel) > 0
    core = np.bincount(labels[opened], minlength=count)[1:]
    h, w = foreground.shape
    spans = (stats[1:, cv2.CC_STAT_WIDTH] >= FRAME_SPAN * w) & (
        stats[1:, cv2.CC_STAT_HEIGHT] >= FRAME_SPAN * h
    )
    core = np.where(spans, 0, core)  # a drawn frame is no subject
    floor = max(MIN_PART * core.max(), MIN_AREA * foreground.size)
    parts = 1 + np.nonzero(core >= floor)[0]
    if not len(parts) or core.max() == 0:
        return "only specks (or a frame) stand out from the border colours"
    share = float(core[parts - 1].sum() / max(1, core.sum()))
    return np.isin(labels, parts), share


def segment(image: Image.Image, text_boxes: list[tuple[int, int, int, int]]) -> PixelMask:
    """The subject's mask, found from `image`'s pixels with `text_boxes` (OCR) left out."""
    import cv2

    width, height = image.size
    scale = WORK_SIDE / max(width, height)
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    small = np.asarray(image.convert("RGB").resize(size, Image.Resampling.BOX))
    lab = _lab(small)
    centres = _border_colours(lab)
    flat = lab.reshape(-1, 3)
    distance = np.full(len(flat), np.inf, dtype=np.float32)
    for centre in centres:
        np.minimum(distance, np.linalg.norm(flat - centre, axis=1), out=distance)
    distance = distance.reshape(size[1], size[0])
    sx, sy = size[0] / width, size[1] / height
    text = np.zeros(distance.shape, dtype=bool)
    for x0, y0, x1, y1 in text_boxes:
        pad = TEXT_PAD * (y1 - y0)
        text[
            max(0, int((y0 - pad) * sy)) : int(np.ceil((y1 + pad) * sy)),
            max(0, int((x0 - pad) * sx)) : int(np.ceil((x1 + pad) * sx)),
        ] = True
    found = _piece(distance, text, FOREGROUND_DISTANCE)
    if isinstance(found, str):
        return PixelMask(np.zeros((height, width), dtype=bool), 0.0, found)
    piece, share = found
    # A mask that changes when the colour tolerance is halved was cut along a soft edge
    # (pale pages on a pale ground, a gap in an outline): it is not to be trusted.
    strict = _piece(distance, text, FOREGROUND_DISTANCE / 2)
    agreement = 0.0 if isinstance(strict, str) else _iou(piece, strict[0])
    hull = cv2.convexHull(cv2.findNonZero(piece.astype(np.uint8)))
    solidity = float(piece.sum() / max(1.0, cv2.contourArea(hull)))
    # Ground colour inside the piece: enclosed ground (holes) or a motif element of the
    # ground's colour fused to the subject; the mask's outline is then not the subject's.
    ground_inside = float(np.mean(distance[piece] <= FOREGROUND_DISTANCE))
    clean = min(1.0, (1.0 - ground_inside) / (1.0 - GROUND_INSIDE_OK))
    confidence = round(share * min(1.0, solidity / 0.6) * agreement * clean, 4)
    full = Image.fromarray(piece.astype(np.uint8) * 255).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    return PixelMask(np.asarray(full) > 127, confidence, "ok", round(ground_inside, 4))
