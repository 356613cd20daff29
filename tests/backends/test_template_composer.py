"""The composer: group kinds keep what must be shared and vary what must differ."""

from __future__ import annotations

import re

import pytest

from datapipe.backends.template_composer import TemplateComposer, apply_case, orientation
from datapipe.plan import plan_groups

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def composed(quickstart):
    composer = TemplateComposer(quickstart)
    return [(slot, composer.compose(slot.to_group())) for slot in plan_groups(quickstart)]


def test_same_group_gives_the_same_specs(quickstart, composed):
    slot, specs = composed[3]
    assert TemplateComposer(quickstart).compose(slot.to_group()) == specs


def test_every_spec_matches_its_slot(composed, quickstart):
    for slot, specs in composed:
        for member, spec in enumerate(specs):
            assert spec.spec_id == f"{slot.group_id}-{member}"
            assert (spec.language, spec.theme, spec.group_kind) == (
                slot.language,
                slot.theme,
                slot.kind,
            )
            assert (spec.width, spec.height) == quickstart.recipe.image.size_for(spec.aspect_ratio)
            assert spec.copy[0].role == "title"
            assert all(line.text.strip() for line in spec.copy)
            if spec.language == "zh":
                assert CJK.search(spec.copy[0].text), spec.copy[0].text
                assert CJK.search(spec.prompt)
            else:
                assert not any(CJK.search(line.text) for line in spec.copy)


def test_group_kinds(composed, quickstart):
    sizes = quickstart.recipe.group_size
    seen = set()
    for slot, specs in composed:
        seen.add(slot.kind)
        entities = [s.entity_id for s in specs]
        if slot.kind == "single":
            assert len(specs) == 1
        elif slot.kind == "rescale":
            a, b = specs
            assert a.copy == b.copy and a.entity_id == b.entity_id and a.style_id == b.style_id
            assert a.seed == b.seed
            assert a.aspect_ratio != b.aspect_ratio
            assert orientation(a.aspect_ratio) != orientation(b.aspect_ratio)
        elif slot.kind == "style":
            assert len(specs) == sizes.style
            assert len({s.style_id for s in specs}) == 1
            assert len(set(entities)) == len(specs)
            assert len({tuple((c.role, c.text) for c in s.copy) for s in specs}) == len(specs)
        elif slot.kind == "layout":
            assert len(specs) == sizes.layout
            assert len({s.layout_id for s in specs}) == 1
            assert len({s.aspect_ratio for s in specs}) == 1
            assert len(set(entities)) == len(specs)
            assert len({s.style_id for s in specs}) == len(specs)
    assert seen == {"single", "rescale", "style", "layout"}


def test_fault_share_follows_the_recipe(composed, quickstart):
    specs = [spec for _, group in composed for spec in group]
    broken = [s for s in specs if s.variant != "good"]
    rate = quickstart.recipe.stages.render.faults.rate
    assert 0 < len(broken) < 3 * rate * len(specs)
    assert {s.variant for s in broken} <= set(quickstart.recipe.stages.render.faults.kinds)


def test_apply_case():
    assert apply_case("summer sale on", "upper", "en") == "SUMMER SALE ON"
    assert apply_case("summer sale on", "title", "en") == "Summer Sale On"
    assert apply_case("夏日", "upper", "zh") == "夏日"
