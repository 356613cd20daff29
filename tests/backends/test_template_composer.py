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
    """The specs carry no fault: the procedural renderer plans its own from each spec."""
    from datapipe.backends.procedural.renderer import ProceduralRenderer

    config = quickstart.recipe.stages.render.faults
    renderer = ProceduralRenderer(quickstart.library, config)
    specs = [spec for _, group in composed for spec in group]
    assert not hasattr(specs[0], "variant")
    broken = [renderer.fault_of(s) for s in specs if renderer.fault_of(s) != "good"]
    assert 0 < len(broken) < 3 * config.rate * len(specs)
    assert set(broken) <= set(config.kinds)


def test_apply_case():
    assert apply_case("summer sale on", "upper", "en") == "SUMMER SALE ON"
    assert apply_case("summer sale on", "title", "en") == "Summer Sale On"
    assert apply_case("夏日", "upper", "zh") == "夏日"


def test_copy_fits_what_the_entity_is(quickstart):
    """No invitation to a dictionary (`邀你参加词典`): event-only templates go to events."""
    from datapipe.records import Group

    library = quickstart.library
    dictionary = library.entity("dictionary")
    assert dictionary.kind == "thing" and library.entity("science_fair").kind == "event"
    assert library.entity("theme_park").kind == "place"
    composer = TemplateComposer(quickstart)
    invitations = ("邀你参加", "欢迎参加", "Join ")
    seen_titles = set()
    for n in range(300):
        group = Group(f"g{n}", "single", n, 0, ("zh", "en")[n % 2], "education")
        rng = __import__("random").Random(n)
        style = library.styles[n % len(library.styles)]
        title = composer._copy(rng, group, dictionary, style)[0].text
        seen_titles.add(title)
        assert not title.startswith(invitations), title
    assert len(seen_titles) > 4, "the thing templates still vary"
    table = library.copy.themes["education"]
    assert "邀你参加{name}" in table.templates("zh", "title", "event")
    assert "邀你参加{name}" not in table.templates("zh", "title", "thing")


def test_only_for_must_name_a_template_of_its_theme(tmp_path):
    import shutil

    from conftest import ROOT

    from datapipe.errors import LibraryError
    from datapipe.libraries import load_prompts
    from datapipe.loading import instructions_used

    shutil.copytree(ROOT / "prompts", tmp_path / "prompts")
    copy = tmp_path / "prompts" / "copy.yaml"
    copy.write_text(
        copy.read_text(encoding="utf-8").replace(
            '"Join {name}": [event]', '"Jion {name}": [event]'
        ),
        encoding="utf-8",
    )
    with pytest.raises(LibraryError, match="none of this theme's templates"):
        load_prompts(tmp_path / "prompts", instructions_used())
