"""The offline subject descriptor tells one subject drawn twice from two subjects alike.

The fidelity benchmark's hardest twin: a brown film reel and a brown globe (study_tour's
colour), both round with dark outlines, on the watercolor style's ground. The descriptor
scored them 0.535 against the 0.5 the rescale check held it to (drawn here, 0.51), while
twins of one subject at two ratios score >= 0.92 (here 0.95): the bound belongs in that
gap, not at its lower edge.
"""

from __future__ import annotations

import random

import pytest
from PIL import Image
from PIL.ImageColor import getrgb

from datapipe.backends.procedural.subjects import draw_subject
from datapipe.backends.template_composer import TemplateComposer
from datapipe.images import encode_png
from datapipe.plan import plan_groups
from datapipe.recipe import RescaleConfig
from datapipe.records import Candidate
from datapipe.tasks.subjects import SUBJECT_SCORES, subject_scores

GROUND = "#F7F3EE"
ACCENTS = [getrgb(c) for c in ("#2F5F96", "#F2A7A7", "#8CC0A6")]
"""The watercolor style's ground and accents."""
REEL, GLOBE = ("film_reel", "#B08968"), ("globe", "#C68B59")


@pytest.fixture(scope="module")
def spec(quickstart):
    return TemplateComposer(quickstart).compose(plan_groups(quickstart)[0].to_group())[0]


def poster(spec, subject: tuple[str, str], side: int, seed: int) -> Candidate:
    """A plain poster with the subject drawn `side` pixels wide, and its mask."""
    shape, colour = subject
    drawn = draw_subject(shape, (side, side), getrgb(colour), ACCENTS, random.Random(seed))
    image = Image.new("RGB", (384, 512), getrgb(GROUND))
    image.paste(drawn, (40, 100), drawn)
    mask = Image.new("L", image.size, 0)
    mask.paste(drawn.getchannel("A").point(lambda a: 255 if a > 127 else 0), (40, 100))
    return Candidate(
        spec=spec, image=encode_png(image, 1), subject_mask=encode_png(mask, 1), details={}
    )


def similarity(a: Candidate, b: Candidate) -> float:
    return subject_scores(a, b)[SUBJECT_SCORES["descriptor"]]


@pytest.mark.parametrize("seeds", [(1, 2), (3, 4), (5, 6)])
def test_two_round_brown_subjects_fall_under_the_rescale_bound(spec, seeds):
    bound = RescaleConfig().min_subject_similarity
    reel, globe = poster(spec, REEL, 200, seeds[0]), poster(spec, GLOBE, 150, seeds[1])
    assert similarity(reel, globe) < bound
    assert similarity(reel, poster(spec, REEL, 150, seeds[1])) >= bound
