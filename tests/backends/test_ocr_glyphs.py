"""The glyph shape check: a CJK line drawn right scores low, one malformed glyph stands out,
whatever the recogniser reads (it reads through the damage)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from datapipe.backends.ocr_glyphs import ShapeCheck, check_shapes
from datapipe.backends.ocr_rapidocr import RapidOcrBackend
from datapipe.backends.procedural.lettering import Look, draw_layer
from datapipe.backends.procedural.text_faults import damage_glyph
from datapipe.fonts import font
from datapipe.loading import load_recipe
from datapipe.recipe import Rule
from datapipe.text import letters

TEXT = "新品芝士蛋糕上市"
PAD = 12
PLAIN = Look(outline=0.0, shadow=False, angle=0.0, tracking=0.0, small=False, texture=False)


@pytest.fixture(scope="module")
def reader():
    backend = RapidOcrBackend(threads=1)
    backend.load()
    return backend


@pytest.fixture(scope="module")
def limit() -> float:
    """train.yaml's bound: the recipe that takes the shape rule (cluster sizes)."""
    rule: Rule = load_recipe(ROOT / "pipelines" / "train.yaml").recipe.thresholds["text_shape"]
    return float(rule.max)


def drawn(weight: str = "bold", damage_seed: int | None = None) -> Image.Image:
    """The line dark on a light ground with PAD of ground around it; its third glyph
    damaged (text_faults.damage_glyph, drawn from the seed) when a seed is given."""
    layer = draw_layer(TEXT, font(weight, 56), (30, 30, 40), PLAIN)
    if damage_seed is not None:
        rng = random.Random(damage_seed)
        assert damage_glyph(layer.image, layer.glyphs[2], rng, layer.glyphs[3])
    size = (layer.image.width + 2 * PAD, layer.image.height + 2 * PAD)
    image = Image.new("RGB", size, "#f4eee0")
    image.paste(layer.image, (PAD, PAD), layer.image)
    return image


@pytest.mark.parametrize("weight", ["bold", "regular"])
def test_a_line_drawn_right_scores_under_the_rule(reader, limit, weight):
    image = drawn(weight)
    got = reader.recognize(image)
    assert letters(got.text) == letters(TEXT), got.text
    check = check_shapes(np.asarray(image), got.text, got.places, PAD)
    assert check.chars == TEXT
    assert check.outlier is not None and check.outlier <= limit, check


def test_malformed_glyphs_are_caught_by_the_read_or_the_shape(reader, limit):
    """Eight seeded damages of the third glyph (erased band, mirrored half, merged
    halves, added stroke): the recogniser reads most through, the shape check catches
    them. Its known limit: a thin stroke added along the strokes a glyph already has
    (a diagonal across 芝) moves the blurred ink map too little."""
    caught = []
    for seed in range(8):
        image = drawn(damage_seed=seed)
        got = reader.recognize(image)
        if letters(got.text) != letters(TEXT):
            caught.append(seed)  # the read differs from the copy: rejected on that
            continue
        check = check_shapes(np.asarray(image), got.text, got.places, PAD)
        assert check.worst == TEXT[2], check
        if check.outlier is not None and check.outlier > limit:
            caught.append(seed)
    assert len(caught) >= 6, caught


def test_a_line_in_a_font_unlike_the_references_is_not_scored():
    """Every glyph far from the references (a brush face): one glyph's design differs as
    much as damage would, so the line gets no shape score rather than a rejection."""
    assert ShapeCheck("新品芝士蛋", [0.45, 0.5, 0.52, 0.9, 0.48]).outlier is None
    assert ShapeCheck("新品芝士蛋", [0.02, 0.03, 0.04, 0.4, 0.03]).outlier == pytest.approx(0.37)
    assert ShapeCheck("新品", [0.02, 0.4]).outlier is None  # too short for a median
