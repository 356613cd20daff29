"""The offline subject mask is found from the pixels and graded against the drawn one."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from PIL import Image

from datapipe.backends import subject_pixels
from datapipe.backends.procedural.renderer import ProceduralRenderer
from datapipe.backends.template_composer import TemplateComposer
from datapipe.plan import plan_groups


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 1.0


@pytest.fixture(scope="module")
def posters(quickstart):
    """Twenty-four quickstart posters with what their renderer drew (for grading only)."""
    composer = TemplateComposer(quickstart)
    renderer = ProceduralRenderer(quickstart.library)
    specs = [s for slot in plan_groups(quickstart)[:24] for s in composer.compose(slot.to_group())]
    return [(spec, renderer.render(spec)) for spec in specs[:24]]


def test_masks_match_what_was_drawn(posters):
    scores = []
    for _, drawn in posters:
        text = [line.box for line in drawn.truth.text_boxes]  # where OCR would find the copy
        found = subject_pixels.segment(drawn.image, text)
        assert found.mask.shape == drawn.subject_mask.shape
        scores.append((iou(found.mask, drawn.subject_mask), found.confidence))
    assert statistics.median(s for s, _ in scores) >= 0.9, scores
    trusted = [s for s, confidence in scores if confidence >= 0.7]
    assert len(trusted) >= 0.8 * len(scores) and min(trusted) >= 0.75, scores


def test_a_poster_without_a_subject_gives_no_mask(posters, quickstart):
    spec, _ = posters[0]
    renderer = ProceduralRenderer(quickstart.library)
    blank = subject_pixels.segment(renderer.render(spec, "blank").image, [])
    assert not blank.mask.any() and blank.confidence == 0.0 and blank.reason != "ok"
    bare = renderer.render(spec, "no_subject")
    found = subject_pixels.segment(bare.image, [line.box for line in bare.truth.text_boxes])
    assert found.mask.sum() < 0.01 * found.mask.size or found.confidence < 0.7


def test_a_framed_ground_is_not_a_subject():
    image = Image.new("RGB", (200, 300), (20, 20, 20))
    pixels = np.asarray(image).copy()
    pixels[6:8, 6:194] = pixels[292:294, 6:194] = (200, 170, 60)  # a thin gold frame
    pixels[6:294, 6:8] = pixels[6:294, 192:194] = (200, 170, 60)
    pixels[100:160, 70:130] = (220, 40, 40)  # the subject
    found = subject_pixels.segment(Image.fromarray(pixels), [])
    square = np.zeros((300, 200), dtype=bool)
    square[100:160, 70:130] = True
    assert iou(found.mask, square) > 0.9 and found.confidence > 0.9


def test_a_mask_closed_around_the_ground_is_not_trusted(quickstart):
    """A reel's holes or a ring show the ground; the segmenter cannot reach them from the
    border, so the mask takes them in: its confidence says not to cut pairs from it."""
    ground, red = (240, 230, 210), (200, 40, 40)
    yy, xx = np.mgrid[:300, :300]
    radius = np.hypot(yy - 150, xx - 150)
    solid = np.full((300, 300, 3), ground, dtype=np.uint8)
    solid[radius <= 70] = red
    ring = solid.copy()
    ring[radius <= 48] = ground
    disc = subject_pixels.segment(Image.fromarray(solid), [])
    closed = subject_pixels.segment(Image.fromarray(ring), [])
    assert disc.ground_inside < 0.05 and disc.confidence > 0.9
    assert closed.ground_inside > 0.4
    floor = quickstart.recipe.thresholds["subject_uncertain"].min
    assert closed.confidence < floor <= disc.confidence
