"""Recipe mistakes are one-line errors naming the file and the field path."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import QUICKSTART, write_recipe

from datapipe.errors import RecipeError
from datapipe.loading import load_recipe
from datapipe.recipe import ImageConfig


def error_for(tmp_path: Path, override: dict) -> str:
    path = write_recipe(tmp_path, override)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def test_quickstart_loads_and_hashes_are_stable(quickstart):
    again = load_recipe(QUICKSTART)
    assert quickstart.recipe_hash == again.recipe_hash
    assert len(quickstart.recipe_hash) == 64
    assert quickstart.generation_hash != quickstart.recipe_hash


def test_thresholds_change_the_recipe_hash_but_not_the_generation_hash(tmp_path, quickstart):
    loaded = load_recipe(
        write_recipe(tmp_path, {"thresholds": {"blank": {"score": "quality.std", "min": 20}}})
    )
    assert loaded.recipe_hash != quickstart.recipe_hash
    assert loaded.generation_hash == quickstart.generation_hash


def test_unknown_key_names_its_path(tmp_path):
    message = error_for(tmp_path, {"stages": {"ocr": {"treads": 2}}})
    assert "stages.ocr.treads" in message
    assert "unknown key" in message


def test_wrong_type_names_its_path_and_value(tmp_path):
    message = error_for(tmp_path, {"groups": {"single": "many"}})
    assert "groups.single" in message
    assert "'many'" in message


def test_out_of_range_value(tmp_path):
    message = error_for(tmp_path, {"image": {"long_side": 10}})
    assert "image.long_side" in message


def test_bad_aspect_ratio(tmp_path):
    message = error_for(tmp_path, {"image": {"aspect_ratios": ["3:4", "wide"]}})
    assert "image.aspect_ratios" in message
    assert "'wide'" in message


def test_missing_library_folder(tmp_path):
    message = error_for(tmp_path, {"libraries": {"styles": str(tmp_path / "nowhere")}})
    assert "libraries.styles" in message
    assert "nowhere" in message


def test_threshold_on_a_score_no_stage_writes(tmp_path):
    message = error_for(tmp_path, {"thresholds": {"too_blue": {"score": "colour.blue", "min": 1}}})
    assert "thresholds.too_blue.score" in message
    assert "quality.std" in message  # lists what is available


def test_threshold_without_bounds(tmp_path):
    message = error_for(tmp_path, {"thresholds": {"dull": {"score": "quality.std"}}})
    assert "thresholds.dull" in message and "min, max or both" in message


def test_missing_required_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\nseed: 1\nlanguages: {en: 1}\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert "groups: required key is missing" in str(info.value)


def test_invalid_yaml_gives_line_and_column(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\nseed: [1\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    assert f"{path}:" in str(info.value)
    assert "invalid YAML" in str(info.value)


def test_recipe_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(path)


def test_sizes_keep_the_long_side_and_the_multiple():
    image = ImageConfig(long_side=512, multiple_of=16, aspect_ratios=["3:4", "16:9", "1:1"])
    assert image.size_for("3:4") == (384, 512)
    assert image.size_for("16:9") == (512, 288)
    assert image.size_for("1:1") == (512, 512)


def test_rescale_needs_two_ratios(tmp_path):
    message = error_for(tmp_path, {"image": {"aspect_ratios": ["1:1"]}})
    assert "groups.rescale" in message and "aspect_ratios" in message


def test_style_task_needs_the_phash_stage(tmp_path):
    message = error_for(tmp_path, {"stages": {"phash": {"enabled": False}}})
    assert "stages.phash" in message


def test_the_image_checks_cannot_be_switched_off(tmp_path):
    """A key the pipeline would ignore is refused, not silently kept."""
    message = error_for(tmp_path, {"stages": {"image": {"enabled": False}}})
    assert "stages.image.enabled" in message and "always run" in message


def test_size_strings_for_shard_bytes(tmp_path):
    loaded = load_recipe(write_recipe(tmp_path, {"shards": {"max_bytes": "2GiB"}}))
    assert loaded.recipe.shards.max_bytes == 2 * 2**30
    message = error_for(tmp_path, {"shards": {"max_bytes": "lots"}})
    assert "shards.max_bytes" in message


def test_bench_mistakes_name_their_field(tmp_path):
    message = error_for(
        tmp_path, {"bench": {"thresholds": {"blurry": {"score": "ocr.sharpness", "min": 1}}}}
    )
    assert "bench.thresholds.blurry.score" in message and "ocr.min_found_ned" in message
    disabled = {"tasks": {"layout": {"enabled": False}}, "bench": {"tasks": ["layout"]}}
    assert "bench.tasks: layout is not enabled" in error_for(tmp_path, disabled)
    assert "needs a `gemini:` section" in error_for(
        tmp_path, {"bench": {"judge": {"backend": "gemini"}}}
    )
    message = error_for(tmp_path, {"bench": {"judge": {"bands": {"task_fit": [
        {"score": "subject.area", "cuts": [0.5, 0.1, 0.2, 0.3]}]}}}})  # fmt: skip
    assert "bench.judge.bands.task_fit[0].cuts" in message and "ascending" in message
    assert "needs stages.phash.enabled" in error_for(
        tmp_path, {"stages": {"phash": {"enabled": False}}, "tasks": {"style": {"enabled": False}}}
    )


def test_the_bench_changes_which_pairs_train_may_use_but_not_its_quotas(tmp_path, quickstart):
    bench = load_recipe(write_recipe(tmp_path, {"bench": {"quotas": {"zh": 9}}}))
    other_quota = load_recipe(write_recipe(tmp_path, {"bench": {"quotas": {"zh": 5}}}))
    assert bench.generation_hash != quickstart.generation_hash  # the pair partition
    assert bench.generation_hash == other_quota.generation_hash  # same ids, more or fewer
    assert bench.recipe_hash != other_quota.recipe_hash
