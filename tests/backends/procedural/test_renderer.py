"""The procedural renderer: deterministic, truthful about what it drew, breakable on purpose."""

from __future__ import annotations

import numpy as np
import pytest

from datapipe.backends.procedural.pair_faults import QUIET_MOTIFS, plan_pair_faults
from datapipe.backends.procedural.renderer import ProceduralRenderer, contrast
from datapipe.backends.procedural.text_faults import corrupt_text
from datapipe.backends.template_composer import TemplateComposer
from datapipe.images import encode_png
from datapipe.plan import plan_groups


@pytest.fixture(scope="module")
def specs(quickstart):
    composer = TemplateComposer(quickstart)
    slots = plan_groups(quickstart)
    out = {}
    for slot in slots:
        out.setdefault(slot.kind, composer.compose(slot.to_group()))
    return out


@pytest.fixture(scope="module")
def renderer(quickstart):
    return ProceduralRenderer(quickstart.library)


def test_deterministic(renderer, specs):
    spec = specs["single"][0]
    a, b = renderer.render(spec), renderer.render(spec)
    assert a.truth.fault == "good"
    assert encode_png(a.image) == encode_png(b.image)
    assert np.array_equal(a.subject_mask, b.subject_mask)
    assert a.truth == b.truth


def test_truth_matches_the_spec_and_the_pixels(renderer, specs):
    spec = specs["single"][0]
    result = renderer.render(spec)
    assert result.image.size == (spec.width, spec.height)
    assert result.image.mode == "RGB"
    assert [t.text for t in result.truth.text_boxes] == [line.text for line in spec.copy]
    pixels = np.asarray(result.image).astype(int)
    background = np.median(pixels.reshape(-1, 3), axis=0)
    for text in result.truth.text_boxes:
        x0, y0, x1, y1 = text.box
        assert 0 <= x0 < x1 <= spec.width and 0 <= y0 < y1 <= spec.height
        patch = pixels[y0:y1, x0:x1]
        assert patch.std() > 10, "text box holds no glyphs"
    mask = result.subject_mask
    assert mask.shape == (spec.height, spec.width)
    assert 0.02 < mask.mean() < 0.6
    x0, y0, x1, y1 = result.truth.subject_box
    ys, xs = np.nonzero(mask)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
    inside = pixels[mask].mean(axis=0)
    assert np.abs(inside - background).sum() > 20, "subject is invisible against the background"


def test_text_contrasts_with_what_is_behind_it(renderer, specs):
    for spec in [s for group in specs.values() for s in group]:
        result = renderer.render(spec)
        pixels = np.asarray(result.image)
        for text in result.truth.text_boxes:
            x0, y0, x1, y1 = text.box
            patch = pixels[y0:y1, x0:x1].reshape(-1, 3).astype(float)
            lum = patch @ np.array([0.299, 0.587, 0.114])
            dark, light = patch[lum.argmin()], patch[lum.argmax()]
            assert contrast(tuple(dark), tuple(light)) > 3, (spec.spec_id, text.text)


def test_rescale_relayouts_the_same_content(renderer, specs):
    a, b = (renderer.render(s) for s in specs["rescale"])
    assert a.image.size != b.image.size
    assert [t.text for t in a.truth.text_boxes] == [t.text for t in b.truth.text_boxes]
    assert a.truth.layout_boxes != b.truth.layout_boxes


def test_broken_variants(renderer, specs):
    spec = specs["single"][0]
    missing = renderer.render(spec, "missing_text")
    assert missing.truth.text_boxes == [] and missing.truth.fault == "missing_text"
    nosubject = renderer.render(spec, "no_subject")
    assert not nosubject.subject_mask.any() and nosubject.truth.subject_box is None
    wrong = renderer.render(spec, "wrong_text")
    assert all(t.text != c.text for t, c in zip(wrong.truth.text_boxes, spec.copy, strict=True))
    collapsed = renderer.render(spec, "collapsed")
    xs = [v for t in collapsed.truth.text_boxes for v in (t.box[0], t.box[2])]
    assert max(xs) - min(xs) <= 0.35 * spec.width
    blank = renderer.render(spec, "blank")
    assert len(np.unique(np.asarray(blank.image).reshape(-1, 3), axis=0)) == 1
    truncated = renderer.render(spec, "truncated")
    whole = encode_png(truncated.image, renderer.compress_level)
    assert truncated.file == whole[: len(whole) // 2]


def test_the_fault_plan_comes_from_the_spec_and_the_recipe(quickstart, specs):
    """No fault rides on the spec: the renderer draws it from the spec's seed and id and
    the recipe's `stages.render.faults`, the same every time."""
    faults = quickstart.recipe.stages.render.faults.model_copy(update={"rate": 0.5})
    planned = ProceduralRenderer(quickstart.library, faults)
    every = [s for group in specs.values() for s in group]
    kinds = [planned.fault_of(s) for s in every]
    assert kinds == [planned.fault_of(s) for s in every]
    assert "good" in kinds and set(kinds) - {"good"} <= set(faults.kinds)
    assert not hasattr(every[0], "variant")
    unplanned = ProceduralRenderer(quickstart.library)
    assert {unplanned.fault_of(s) for s in every} == {"good"}


def test_corrupt_text_keeps_length_and_changes_a_third():
    import random

    text = "Summer Coffee Festival"
    garbled = corrupt_text(text, random.Random(1))
    assert len(garbled) == len(text) and garbled != text
    changed = sum(a != b for a, b in zip(text, garbled, strict=True))
    assert changed >= 0.3 * len(text.replace(" ", ""))


def test_other_motif_draws_a_motif_of_another_kind(quickstart):
    """A style twin with `other_motif` shows a pattern where its style has none (or none
    where it has one, or another pattern): never plain, gradient and grain swapped."""
    composer = TemplateComposer(quickstart)
    library = quickstart.library
    swaps = []
    for slot in [s for s in plan_groups(quickstart) if s.kind == "style"]:
        specs = composer.compose(slot.to_group())
        for spec_id, drawing in plan_pair_faults(specs, library, 1.0, ["other_motif"]).items():
            spec = next(s for s in specs if s.spec_id == spec_id)
            swaps.append((library.style(spec.style_id).motif, drawing.style.motif))
    assert len(swaps) == len([s for s in plan_groups(quickstart) if s.kind == "style"])
    assert all(a != b and not {a, b} <= QUIET_MOTIFS for a, b in swaps), swaps
