"""Budget caps: a run stops before the block that would pass a cap, and resumes to the
same bytes as an uncapped run."""

from __future__ import annotations

import json

import pytest
from conftest import write_recipe
from helpers import SMALL
from shards import tree_digest
from typer.testing import CliRunner

from datapipe.cli import app
from datapipe.loading import load_recipe
from datapipe.runner.budget import BUDGET_STOPPED, BudgetExhaustedError, with_caps
from datapipe.runner.local import run_local

GROUPS = {"groups": {"single": 4, "rescale": 2, "style": 1, "layout": 1}}
"""8 groups in blocks of 3: blocks of 4, 5 and 4 renders (in plan order)."""


@pytest.fixture(scope="module")
def uncapped(tmp_path_factory):
    folder = tmp_path_factory.mktemp("budget")
    recipe = write_recipe(folder, {**SMALL, **GROUPS})
    summary = run_local(load_recipe(recipe), folder / "out")
    ledgers = sorted((folder / "out" / "blocks").glob("block-*.json"))
    renders = [json.loads(p.read_text())["counts"]["renders"] for p in ledgers]
    return recipe, tree_digest(folder / "out"), summary, renders


def test_a_render_cap_stops_after_the_last_whole_block_and_resumes_to_the_same_bytes(
    uncapped, tmp_path
):
    recipe, expected, full, per_block = uncapped
    assert len(per_block) == 3 and sum(per_block) == full.renders
    loaded = load_recipe(recipe)
    out = tmp_path / "out"
    cap = per_block[0] + per_block[1] - 1  # the second block does not fit
    with pytest.raises(BudgetExhaustedError) as stopped:
        run_local(with_caps(loaded, max_renders=cap), out)
    stop = stopped.value
    assert stop.block == 1 and stop.spent.renders == per_block[0]
    assert stop.projected.renders == per_block[0] + per_block[1] > cap
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "stopped"
    assert run["summary"]["renders"] == per_block[0]
    assert run["budget"]["stop"]["cap"] == "max_renders"
    assert len(list((out / "blocks").glob("block-*.json"))) == 1
    # a larger cap goes one block further; no cap finishes it
    with pytest.raises(BudgetExhaustedError):
        run_local(with_caps(loaded, max_renders=per_block[0] + per_block[1]), out)
    assert len(list((out / "blocks").glob("block-*.json"))) == 2
    summary = run_local(loaded, out)
    assert summary.renders == full.renders and summary.blocks_skipped == 2
    assert tree_digest(out) == expected
    assert json.loads((out / "run.json").read_text())["status"] == "finished"


def test_the_cli_stops_with_its_own_status_and_says_what_it_spent(uncapped, tmp_path):
    recipe, _, _, per_block = uncapped
    out = tmp_path / "out"
    args = ["run", str(recipe), "--out", str(out), "-q"]
    result = CliRunner().invoke(app, [*args, "--max-renders", str(per_block[0])])
    assert result.exit_code == BUDGET_STOPPED, result.output
    assert "budget: block 1" in result.output and "max_renders" in result.output
    assert f"'renders': {per_block[0]}" in result.output
    verify = CliRunner().invoke(app, ["verify", str(out)])
    assert verify.exit_code == 3, verify.output  # sound, unfinished


def test_caps_stay_outside_the_hashes(uncapped):
    recipe, *_ = uncapped
    loaded = load_recipe(recipe)
    capped = with_caps(loaded, max_usd=1.0, max_gpu_hours=None)
    assert capped.recipe.execution.budget.max_usd == 1.0
    assert capped.recipe.execution.budget.max_gpu_hours is None
    assert capped.recipe_hash == loaded.recipe_hash
    assert capped.generation_hash == loaded.generation_hash


@pytest.mark.timeout(600)
def test_the_ray_runner_stops_at_the_same_block(uncapped, tmp_path, ray_session):
    from datapipe.runner.ray_runner import run_ray

    recipe, expected, _, per_block = uncapped
    loaded = load_recipe(recipe)
    out = tmp_path / "ray"
    with pytest.raises(BudgetExhaustedError) as stopped:
        run_ray(with_caps(loaded, max_renders=per_block[0] + per_block[1]), out)
    assert stopped.value.block == 2
    assert len(list((out / "blocks").glob("block-*.json"))) == 2
    run_local(loaded, out)  # the local runner finishes what the Ray runner began
    assert tree_digest(out) == expected
