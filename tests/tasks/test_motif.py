"""The style check's background texture tells a motif's kind, not its angle or grain.

Grounds drawn by the procedural motifs, posters of two ratios: one motif at two ratios
(and so two angles), with the renderer's film grain on one, must agree above the bound
the fidelity benchmark grades; another kind of motif must fall below it. A motif is read
in colour: one drawn in a hue as bright as its ground is a motif all the same.
"""

from __future__ import annotations

import random

import pytest

from datapipe.backends.procedural.lettering import add_texture
from datapipe.backends.procedural.motifs import draw_background
from datapipe.backends.template_composer import TemplateComposer
from datapipe.images import encode_png
from datapipe.plan import plan_groups
from datapipe.records import Candidate
from datapipe.tasks.style import motif_similarity

BOUND = 0.45
"""min_motif_similarity as benchmarks/fidelity_pairs.py grades it (MOTIF_BOUND)."""
PALETTE = {
    "background": (243, 227, 195),
    "primary": (194, 70, 42),
    "secondary": (240, 162, 2),
    "accent": (14, 124, 123),
}
ISOLUMINANT = {
    "background": (243, 227, 195),
    "primary": (250, 240, 40),
    "secondary": (255, 225, 60),
    "accent": (235, 235, 70),
}
"""Yellows about as bright as the beige ground: in grey levels their motif all but vanishes."""
WIDE, TALL = (512, 384), (384, 512)


@pytest.fixture(scope="module")
def spec(quickstart):
    return TemplateComposer(quickstart).compose(plan_groups(quickstart)[0].to_group())[0]


def ground(
    spec, motif: str, size: tuple[int, int], seed: int, grain: bool = False, palette=PALETTE
) -> Candidate:
    image = draw_background(motif, size, palette, random.Random(seed))
    if grain:
        add_texture(image, seed)
    return Candidate(spec=spec, image=encode_png(image, 1))


@pytest.mark.parametrize("motif", ["stripes", "diagonal_stripes", "dots", "grid", "plain"])
def test_one_motif_agrees_across_ratios_and_grain(spec, motif):
    wide = ground(spec, motif, WIDE, 1)
    assert motif_similarity(wide, ground(spec, motif, TALL, 2)) > BOUND
    assert motif_similarity(wide, ground(spec, motif, TALL, 2, grain=True)) > BOUND


@pytest.mark.parametrize(
    ("motif", "other"),
    [
        ("stripes", "dots"),
        ("plain", "grid"),
        pytest.param(
            "diagonal_stripes",
            "checker",
            marks=pytest.mark.xfail(
                strict=True,
                reason="one direction against two at right angles shares half the "
                "directions (0.5, over the bound); the grey-level read passed this case "
                "only because it could not see a checker in yellow on beige",
            ),
        ),
        ("dots", "plain"),
    ],
)
def test_another_kind_of_motif_falls_below_the_bound(spec, motif, other):
    assert motif_similarity(ground(spec, motif, WIDE, 1), ground(spec, other, TALL, 2)) < BOUND


@pytest.mark.parametrize("motif", ["stripes", "dots", "grid", "waves"])
def test_a_motif_as_bright_as_its_ground_is_read_in_colour(spec, motif):
    faint = ground(spec, motif, WIDE, 1, palette=ISOLUMINANT)
    assert motif_similarity(faint, ground(spec, "plain", TALL, 2, palette=ISOLUMINANT)) < BOUND
    assert motif_similarity(faint, ground(spec, motif, TALL, 2)) > BOUND
