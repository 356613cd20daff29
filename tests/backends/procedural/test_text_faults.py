"""Text faults are drawn as they say, only where they say, and labelled in the truth."""

from __future__ import annotations

import random

import numpy as np
import pytest

from datapipe.backends.procedural.lettering import Look, choose_look, draw_layer
from datapipe.backends.procedural.renderer import ProceduralRenderer
from datapipe.backends.procedural.text_faults import (
    LOOKALIKES,
    TEXT_FAULTS,
    VISIBLE_DAMAGE,
    damage_glyph,
    edit_copy,
    glyph_spot,
    plain_ink,
)
from datapipe.backends.template_composer import TemplateComposer
from datapipe.fonts import font
from datapipe.plan import plan_groups

COPY = [("title", "仅售199元"), ("body", "2026年11月27日"), ("body", "立即报名")]


@pytest.fixture(scope="module")
def spec(quickstart):
    slot = next(s for s in plan_groups(quickstart) if s.kind == "single")
    return TemplateComposer(quickstart).compose(slot.to_group())[0]


@pytest.fixture(scope="module")
def renderer(quickstart):
    return ProceduralRenderer(quickstart.library)


def test_digit_changed_changes_one_digit():
    lines, fault = edit_copy("digit_changed", COPY, random.Random(3), "zh")
    assert fault.kind == "digit_changed"
    before, after = COPY[fault.line][1], lines[fault.line][1]
    diff = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(diff) == 1 and diff[0][0].isdigit() and diff[0][1].isdigit()
    assert [t for i, (_, t) in enumerate(lines) if i != fault.line] == [
        t for i, (_, t) in enumerate(COPY) if i != fault.line
    ]


def test_lookalike_swaps_one_glyph_for_its_lookalike():
    for seed in range(20):
        _, fault = edit_copy("lookalike", [("title", "SUMMER SALE")], random.Random(seed), "en")
        a, b = fault.before[fault.char], fault.after[fault.char]
        assert LOOKALIKES[a] == b and a != b
        assert sum(x != y for x, y in zip(fault.before, fault.after, strict=True)) == 1


def test_a_copy_without_digits_falls_back_and_says_so():
    lines, fault = edit_copy("digit_changed", [("title", "SUMMER SALE")], random.Random(1), "en")
    assert fault.kind == "lookalike" and lines[0][1] != "SUMMER SALE"


def test_extra_and_duplicated_lines_add_one_line():
    extra, fault = edit_copy("extra_line", COPY, random.Random(2), "zh")
    assert len(extra) == len(COPY) + 1 and extra[fault.line][1] == fault.after
    assert fault.how in ("words", "gibberish")
    twice, fault = edit_copy("duplicated_line", COPY, random.Random(2), "zh")
    texts = [t for _, t in twice]
    assert len(twice) == len(COPY) + 1 and texts.count(fault.after) == 2


def test_other_kinds_leave_the_copy_alone():
    for kind in ("good", "malformed_glyph", "no_subject"):
        assert edit_copy(kind, COPY, random.Random(0), "zh") == (COPY, None)


@pytest.mark.parametrize("kind", TEXT_FAULTS)
def test_each_fault_is_labelled_in_the_truth(renderer, spec, kind):
    result = renderer.render(spec, fault=kind)
    assert result.truth.text_fault["kind"] in (kind, "lookalike", "wrong_text")
    drawn = [t.text for t in result.truth.text_boxes]
    assert drawn != [line.text for line in spec.copy] or kind == "malformed_glyph"


def test_malformed_glyph_damages_pixels_inside_one_line_only(renderer, spec):
    good = renderer.render(spec, fault="good")
    bad = renderer.render(spec, fault="malformed_glyph")
    fault = bad.truth.text_fault
    assert fault["how"] and fault["before"] == fault["after"]
    assert [t.text for t in bad.truth.text_boxes] == [t.text for t in good.truth.text_boxes]
    diff = np.abs(np.asarray(good.image, int) - np.asarray(bad.image, int)).sum(axis=2) > 40
    ys, xs = np.nonzero(diff)
    assert len(xs) > 20, "no glyph was damaged"
    x0, y0, x1, y1 = bad.truth.text_boxes[fault["line"]].box
    pad = 4
    assert (
        x0 - pad <= xs.min()
        and xs.max() < x1 + pad
        and y0 - pad <= ys.min()
        and ys.max() < y1 + pad
    )


def test_glyph_spot_picks_a_letter_digit_or_cjk_glyph():
    rng = random.Random(0)
    for _ in range(20):
        i, j = glyph_spot(COPY, rng)
        assert COPY[i][1][j].isalnum()


def test_the_look_is_a_deterministic_mix():
    looks = [choose_look(seed) for seed in range(400)]
    assert looks == [choose_look(seed) for seed in range(400)]
    for share in (
        sum(bool(lk.outline) for lk in looks),
        sum(lk.shadow for lk in looks),
        sum(bool(lk.angle) for lk in looks),
        sum(bool(lk.tracking) for lk in looks),
        sum(lk.small for lk in looks),
        sum(lk.texture for lk in looks),
    ):
        assert 0.15 * len(looks) < share < 0.5 * len(looks)


@pytest.mark.parametrize("text", ["口口", "00", "HH", "日日"])
def test_a_glyph_damage_is_visible_even_on_a_symmetric_glyph(text):
    """Mirroring a symmetric glyph or merging two alike halves changes nothing: the
    damage gives way to one that changes at least VISIBLE_DAMAGE of the ink."""
    plain = Look(outline=0.0, shadow=False, angle=0.0, tracking=0.0, small=False, texture=False)
    for seed in range(8):
        layer = draw_layer(text, font("bold", 48), (20, 20, 20), plain)
        box = layer.glyphs[0]
        before = np.asarray(layer.image)[box[1] : box[3], box[0] : box[2], 3] > 128
        damage_glyph(layer.image, box, random.Random(seed), layer.glyphs[1])
        after = np.asarray(layer.image)[box[1] : box[3], box[0] : box[2], 3] > 128
        assert np.count_nonzero(before != after) >= VISIBLE_DAMAGE * np.count_nonzero(before)


@pytest.mark.parametrize("text", ["UU", "DD", "AA", "OO"])
def test_a_half_is_never_mirrored_across_an_axis_the_glyph_is_symmetric_along(text):
    """U or A mirrored left to right, D top to bottom is U, A or D again (off its box's
    centre the mirror moves a tenth of the ink, but nobody would call it malformed):
    a mirror goes across the other axis, or another damage is drawn."""
    shadowed = Look(outline=0.05, shadow=True, angle=0.0, tracking=0.0, small=False, texture=False)
    axis = {"U": "right half", "A": "right half", "D": "bottom half", "O": "mirrored"}
    face = font("bold", 48)
    for seed in range(12):
        layer = draw_layer(text, face, (20, 20, 20), shadowed)
        rng = random.Random(seed)
        plain = plain_ink(text[0], face)  # the shadow is not the glyph's
        said = damage_glyph(layer.image, layer.glyphs[0], rng, layer.glyphs[1], plain)
        assert said and not said.startswith(axis[text[0]]), (seed, said)
