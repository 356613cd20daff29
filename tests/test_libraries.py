"""Library files: the shipped ones are complete; mistakes name the file and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from datapipe.errors import LibraryError
from datapipe.loading import load_libraries
from datapipe.recipe import ALL_THEMES, Libraries


@pytest.fixture
def libs(tmp_path: Path) -> Libraries:
    for name in ("entity_libraries", "style_libraries", "prompts"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return Libraries(
        entities=tmp_path / "entity_libraries",
        styles=tmp_path / "style_libraries",
        prompts=tmp_path / "prompts",
    )


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def test_shipped_libraries_meet_the_minimums(quickstart):
    library = quickstart.library
    assert set(library.entities_by_theme) == set(ALL_THEMES)
    for theme, entities in library.entities_by_theme.items():
        assert len(entities) >= 40, theme
        for entity in entities:
            assert (
                entity.zh.name
                and entity.en.name
                and entity.zh.description
                and entity.en.description
            )
    assert len(library.styles) >= 30
    ids = {s.id for s in library.styles}
    assert {"minimalist", "retro", "y2k"} <= ids


def test_duplicate_entity_id_across_files(libs):
    food_id = yaml.safe_load((libs.entities / "food.yaml").read_text())["entities"][0]["id"]
    edit(libs.entities / "products.yaml", lambda d: d["entities"][1].update(id=food_id))
    with pytest.raises(LibraryError) as info:
        load_libraries(libs)
    message = str(info.value)
    assert "products.yaml: entities[1].id" in message
    assert "already used in" in message and message.endswith("food.yaml")


def test_duplicate_name_in_one_theme(libs):
    path = libs.entities / "nature.yaml"
    edit(path, lambda d: d["entities"][2]["en"].update(name=d["entities"][0]["en"]["name"]))
    with pytest.raises(
        LibraryError, match=r"nature.yaml: entities\[\*\].en.name\[2\]: duplicate name"
    ):
        load_libraries(libs)


def test_missing_language(libs):
    edit(libs.entities / "events.yaml", lambda d: d["entities"][3].pop("zh"))
    with pytest.raises(
        LibraryError, match=r"events.yaml: entities\[3\].zh: required key is missing"
    ):
        load_libraries(libs)


def test_empty_field(libs):
    edit(libs.styles / "styles.yaml", lambda d: d["styles"][0]["en"].update(name="  "))
    with pytest.raises(LibraryError, match=r"styles.yaml: styles\[0\].en.name"):
        load_libraries(libs)


def test_unknown_shape_lists_the_valid_ones(libs):
    edit(libs.entities / "food.yaml", lambda d: d["entities"][0].update(shape="spaceship"))
    with pytest.raises(LibraryError) as info:
        load_libraries(libs)
    assert "entities[0].shape: unknown shape 'spaceship'" in str(info.value)
    assert "bottle" in str(info.value)


def test_unknown_motif(libs):
    edit(libs.styles / "styles.yaml", lambda d: d["styles"][4].update(motif="plaid"))
    with pytest.raises(LibraryError, match=r"styles\[4\].motif: unknown motif 'plaid'"):
        load_libraries(libs)


def test_placeholder_not_allowed_in_an_instruction(libs):
    edit(
        libs.prompts / "instructions.yaml", lambda d: d["rescale"]["en"].append("Make it {entity}")
    )
    with pytest.raises(
        LibraryError, match=r"instructions.yaml: rescale.en\[\d+\]: placeholder \{entity\}"
    ):
        load_libraries(libs)


def test_copy_role_without_templates(libs):
    edit(libs.prompts / "copy.yaml", lambda d: d["themes"]["food"]["zh"].pop("title"))
    with pytest.raises(LibraryError, match=r"copy.yaml: themes.food: .*zh.title"):
        load_libraries(libs)


def test_layout_box_outside_the_poster(libs):
    edit(libs.styles / "layouts.yaml", lambda d: d["layouts"][0].update(title=[0.1, 0.1, 1.2, 0.3]))
    with pytest.raises(LibraryError, match=r"layouts.yaml: layouts\[0\]"):
        load_libraries(libs)


def test_library_digest_follows_content(libs, quickstart):
    assert load_libraries(libs).digest == quickstart.library.digest
    edit(
        libs.entities / "food.yaml",
        lambda d: d["entities"][0]["en"].update(description="a red thing"),
    )
    assert load_libraries(libs).digest != quickstart.library.digest


def test_every_entity_has_an_english_detector_phrase_for_zh_and_en_posters(quickstart):
    """Grounding DINO's bert-base-uncased vocabulary holds a quarter of the CJK characters
    of the zh names: the detector must be asked in English, for zh posters too."""
    from helpers import first_group

    entities = [e for es in quickstart.library.entities_by_theme.values() for e in es]
    assert len(entities) == 270
    for entity in entities:
        assert entity.detect.isascii() and entity.detect == entity.detect.lower(), entity.id
        assert 1 <= len(entity.detect.split()) <= 6, entity.id
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in entity.detect), entity.id
    # What the pipeline carries: a zh spec holds the zh name and the English phrase.
    spec = first_group(quickstart).candidates[0].spec
    entity = quickstart.library.entity(spec.entity_id)
    assert spec.entity_detect == entity.detect
    assert spec.entity_name == getattr(entity, spec.language).name


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        ("冰咖啡", "should match pattern"),
        ("Iced Coffee", "should match pattern"),
        ("", "at least 2 characters"),
        ("a tall glass of iced coffee with condensation", "at most 6 words"),
    ],
)
def test_a_detector_phrase_must_be_short_lower_case_english(libs, phrase, message):
    edit(libs.entities / "food.yaml", lambda d: d["entities"][0].update(detect=phrase))
    with pytest.raises(LibraryError, match=r"food.yaml: entities\[0\].detect") as info:
        load_libraries(libs)
    assert message in str(info.value)


def test_an_entity_without_a_detector_phrase_is_refused(libs):
    edit(libs.entities / "food.yaml", lambda d: d["entities"][0].pop("detect"))
    with pytest.raises(LibraryError, match=r"food.yaml: entities\[0\].detect"):
        load_libraries(libs)


def test_instruction_keys_are_the_tasks(libs):
    """Which instruction templates exist is the task registry's to say: a key no task
    uses is refused (a misspelt key would otherwise leave a task without wording), and
    so is a missing one."""
    edit(libs.prompts / "instructions.yaml", lambda d: d.update(stlye=d.pop("style")))
    with pytest.raises(
        LibraryError, match=r"instructions.yaml: stlye: no task uses.*did you mean style\?"
    ):
        load_libraries(libs)
    edit(libs.prompts / "instructions.yaml", lambda d: d.pop("stlye"))
    with pytest.raises(LibraryError, match=r"instructions.yaml: style: missing"):
        load_libraries(libs)
