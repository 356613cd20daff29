"""Procedural subjects (drawn objects with a binary mask) and background motifs."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from datapipe.backends.procedural.motifs import MOTIFS, draw_background
from datapipe.backends.procedural.subjects import SHAPES, draw_subject

COLOR = (214, 70, 60)
ACCENTS = [(250, 210, 80), (40, 160, 200), (240, 240, 235)]
PALETTES = [
    {
        "background": (250, 244, 230),
        "primary": (220, 80, 60),
        "secondary": (40, 110, 160),
        "accent": (240, 180, 40),
        "text": (30, 30, 30),
    },
    {
        "background": (24, 28, 48),
        "primary": (90, 200, 220),
        "secondary": (230, 80, 150),
        "accent": (250, 210, 90),
        "text": (245, 245, 245),
    },
]


def _subject(shape: str, size: tuple[int, int] = (160, 160), seed: int = 0) -> np.ndarray:
    img = draw_subject(shape, size, COLOR, ACCENTS, random.Random(seed))
    assert img.mode == "RGBA"
    assert img.size == size
    return np.asarray(img)


# --------------------------------------------------------------------------- subjects


def test_shape_names() -> None:
    assert len(SHAPES) == 47
    assert len(set(SHAPES)) == len(SHAPES)
    assert SHAPES[:3] == ("bottle", "perfume", "phone")
    assert SHAPES[-1] == "star"


@pytest.mark.parametrize("shape", SHAPES)
def test_subject_mask_is_binary_and_fills_the_box(shape: str) -> None:
    arr = _subject(shape)
    alpha = arr[..., 3]
    assert set(np.unique(alpha).tolist()) <= {0, 255}
    assert not arr[alpha == 0, :3].any(), "transparent pixels must have RGB (0, 0, 0)"
    on = alpha > 0
    assert 0.08 <= on.mean() <= 0.90
    ys, xs = np.nonzero(on)
    span_x = (xs.max() - xs.min() + 1) / on.shape[1]
    span_y = (ys.max() - ys.min() + 1) / on.shape[0]
    assert max(span_x, span_y) >= 0.55
    # Stays inside the box with a small margin, roughly centred.
    assert not (on[0].any() or on[-1].any() or on[:, 0].any() or on[:, -1].any())
    assert abs((xs.min() + xs.max()) / 2 - on.shape[1] / 2) <= 3
    assert abs((ys.min() + ys.max()) / 2 - on.shape[0] / 2) <= 3
    # Several colours (shade, highlight, outline), not a flat silhouette.
    assert len(np.unique(arr[on][:, :3], axis=0)) >= 8


@pytest.mark.parametrize("shape", SHAPES)
def test_subject_is_deterministic_and_small_sizes_work(shape: str) -> None:
    a = draw_subject(shape, (96, 96), COLOR, ACCENTS, random.Random(7))
    b = draw_subject(shape, (96, 96), COLOR, ACCENTS, random.Random(7))
    assert a.tobytes() == b.tobytes()
    tiny = _subject(shape, (48, 48), seed=3)
    assert (tiny[..., 3] > 0).any()
    for size in ((200, 90), (70, 180), (8, 8)):
        arr = _subject(shape, size, seed=1)
        assert set(np.unique(arr[..., 3]).tolist()) <= {0, 255}


def test_different_seeds_vary_some_subjects() -> None:
    differ = sum(
        draw_subject(s, (96, 96), COLOR, ACCENTS, random.Random(1)).tobytes()
        != draw_subject(s, (96, 96), COLOR, ACCENTS, random.Random(2)).tobytes()
        for s in SHAPES
    )
    assert differ >= len(SHAPES) // 2


def test_subject_uses_only_the_given_rng() -> None:
    random.seed(123)
    np.random.seed(123)
    py_state, np_state = random.getstate(), np.random.get_state()[1].copy()
    draw_subject("tree", (64, 64), COLOR, ACCENTS, random.Random(0))
    draw_background("grain", (64, 64), PALETTES[0], random.Random(0))
    assert random.getstate() == py_state
    assert (np.random.get_state()[1] == np_state).all()


def test_subject_handles_odd_palettes() -> None:
    for palette in ([], [COLOR], [(0, 0, 0), (255, 255, 255)]):
        arr = np.asarray(draw_subject("gift", (64, 64), COLOR, palette, random.Random(0)))
        assert (arr[..., 3] > 0).mean() > 0.08


def test_unknown_shape_raises() -> None:
    with pytest.raises(ValueError, match="spaceship") as info:
        draw_subject("spaceship", (64, 64), COLOR, ACCENTS, random.Random(0))
    assert "bottle" in str(info.value)
    assert "star" in str(info.value)


def test_shapes_are_distinguishable() -> None:
    masks = {s: _subject(s, (128, 128))[..., 3] > 0 for s in SHAPES}
    for a, b in itertools.combinations(SHAPES, 2):
        iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
        assert iou < 0.9, f"{a} and {b} masks overlap too much (IoU {iou:.2f})"


# --------------------------------------------------------------------------- motifs


def test_motif_names() -> None:
    assert MOTIFS[0] == "plain"
    assert MOTIFS[-1] == "blobs"
    assert len(MOTIFS) == 16
    assert len(set(MOTIFS)) == len(MOTIFS)


@pytest.mark.parametrize("motif", MOTIFS)
@pytest.mark.parametrize("palette", PALETTES, ids=["light", "dark"])
def test_motif_background_dominates(motif: str, palette: dict) -> None:
    img = draw_background(motif, (96, 144), palette, random.Random(4))
    assert img.mode == "RGB"
    assert img.size == (96, 144)
    arr = np.asarray(img, dtype=np.float32)
    keys = ("background", "primary", "secondary", "accent")
    cols = np.array([palette[k] for k in keys], dtype=np.float32)
    dist = np.linalg.norm(arr[:, :, None, :] - cols[None, None], axis=-1)
    assert (dist.argmin(axis=-1) == 0).mean() >= 0.8
    assert dist[..., 0].mean() < 70


@pytest.mark.parametrize("motif", MOTIFS)
def test_motif_is_deterministic_and_sized(motif: str) -> None:
    pal = PALETTES[1]
    a = draw_background(motif, (80, 120), pal, random.Random(11))
    b = draw_background(motif, (80, 120), pal, random.Random(11))
    assert a.tobytes() == b.tobytes()
    for size in ((64, 64), (150, 40), (1, 1)):
        img = draw_background(motif, size, pal, random.Random(0))
        assert img.mode == "RGB"
        assert img.size == size


def test_patterned_motifs_are_not_flat() -> None:
    for motif in MOTIFS:
        arr = np.asarray(draw_background(motif, (128, 128), PALETTES[0], random.Random(0)))
        assert arr.reshape(-1, 3).std(axis=0).max() > 1.0, motif


def test_unknown_motif_raises() -> None:
    with pytest.raises(ValueError, match="paisley") as info:
        draw_background("paisley", (64, 64), PALETTES[0], random.Random(0))
    assert "halftone" in str(info.value)
