"""The Ray runner writes what the local runner writes, and refuses pools that cannot run."""

from __future__ import annotations

import json

import pytest
from conftest import write_recipe
from helpers import SMALL
from shards import tree_digest

from datapipe.errors import DatapipeError
from datapipe.loading import load_recipe
from datapipe.runner import ray_runner
from datapipe.runner.local import run_local
from datapipe.runner.ray_runner import run_ray, windows
from datapipe.runner.summary import RunSummary

pytestmark = pytest.mark.timeout(600)
GROUPS = 9
"""Three blocks of three groups: each Ray run here takes at least two blocks through the
pools (the windowed one, the two left after a local first block), what the equality
needs; each group more is seconds of OCR on 2 cores, in the local and the Ray run."""


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """The local runner's output for the first GROUPS groups of the small recipe."""
    folder = tmp_path_factory.mktemp("local")
    recipe = load_recipe(write_recipe(folder, SMALL))
    run_local(recipe, folder / "out", limit=GROUPS)
    return recipe, tree_digest(folder / "out")


def test_ray_output_equals_local_output(tmp_path, ray_session, local_reference):
    recipe, local = local_reference
    summary = run_ray(recipe, tmp_path / "ray", limit=GROUPS)
    ray = tree_digest(tmp_path / "ray")
    assert any(name.startswith("datasets/train/fill/") for name in ray)
    assert ray == local
    run = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert run["runner"] == "ray" and run["status"] == "finished"
    render = run["summary"]["stages"]["render"]
    assert render["items"] == summary.renders == summary.rendered
    assert render["busy_seconds"] > 0 and len(render["nodes"]) == 1
    assert isinstance(summary, RunSummary) and summary.blocks == 3


def test_ray_run_resumes_a_local_run_in_windows(
    tmp_path, ray_session, local_reference, monkeypatch
):
    """The Ray run feeds the two blocks left in two windows (one dataset each, pools
    restarted in between): the same bytes as one run, and a recipe the local run's
    output accepts, since execution settings are not part of the recipe hash."""
    recipe, expected = local_reference
    first = run_local(recipe, tmp_path / "out", limit=3)
    fed: list[int] = []
    build = ray_runner.build_dataset

    def counted(ray, loaded, out, groups, pools):
        fed.append(len(groups))
        return build(ray, loaded, out, groups, pools)

    monkeypatch.setattr(ray_runner, "build_dataset", counted)
    windowed = {**SMALL, "execution": {**SMALL["execution"], "window_groups": 2}}
    folder = tmp_path / "windowed"
    folder.mkdir()
    second = run_ray(load_recipe(write_recipe(folder, windowed)), tmp_path / "out", limit=GROUPS)
    assert second.blocks_skipped == 1
    assert second.rendered == second.renders - first.renders
    assert fed == [3, 3]  # a window per block of 3 groups
    assert tree_digest(tmp_path / "out") == expected


def test_windows_take_whole_blocks_in_order_out_of_the_plan():
    todo = {block: [f"{block}.{i}" for i in range(n)] for block, n in [(4, 3), (5, 1), (7, 2)]}
    taken = [list(w) for w in windows(dict(todo), 2)]
    assert taken == [["4.0", "4.1", "4.2"], ["5.0", "7.0", "7.1"]]
    plan = dict(todo)
    assert [list(w) for w in windows(plan, None)] == [[g for gs in todo.values() for g in gs]]
    assert plan == {}


def test_pools_that_would_starve_ray_data_are_refused(tmp_path, ray_session):
    greedy = {**SMALL, "execution": {"stages": {"render": {"cpus": 2, "workers": 2}}}}
    recipe = load_recipe(write_recipe(tmp_path, greedy))
    with pytest.raises(DatapipeError, match=r"execution.stages.*render 2x2"):
        run_ray(recipe, tmp_path / "out", limit=3)


def test_a_resource_no_node_offers_is_refused_at_startup(tmp_path, ray_session):
    gpu = {
        **SMALL,
        "execution": {"stages": {"render": {"cpus": 0.25, "resources": {"fake_gpu": 1}}}},
    }
    recipe = load_recipe(write_recipe(tmp_path, gpu))
    with pytest.raises(DatapipeError, match="needs 1 fake_gpu"):
        run_ray(recipe, tmp_path / "out", limit=3)


def test_unknown_stage_in_execution_is_a_recipe_error(tmp_path):
    from datapipe.errors import RecipeError

    with pytest.raises(RecipeError, match=r"execution.stages.painter: no such stage"):
        load_recipe(write_recipe(tmp_path, {"execution": {"stages": {"painter": {"cpus": 1}}}}))


def test_ray_bench_output_equals_local_output(tmp_path, ray_session):
    """Bench rounds on Ray: committed in block order however renders come back, so the
    near-duplicate and quota verdicts, and every byte, match the local runner."""
    from test_bench import bench_data, write

    data = bench_data(
        {
            "themes": ["food"],
            "groups": {"single": 3, "rescale": 1, "style": 0, "layout": 0},
            "block_size": 2,
            "bench": {"quotas": {"zh": 2, "en": 1}, "tasks": ["fill", "rescale"]},
        }
    )
    recipe = load_recipe(write(tmp_path, data))
    run_local(recipe, tmp_path / "local")
    run_ray(recipe, tmp_path / "ray")
    local, ray = tree_digest(tmp_path / "local"), tree_digest(tmp_path / "ray")
    assert any(name.startswith("datasets/bench/rescale/") for name in ray)
    assert ray == local


def test_unpinned_pools_are_fitted_to_a_small_cluster_and_pinned_ones_kept(quickstart, tmp_path):
    from datapipe.runner.pools import READ_TASK_CPUS, PoolSpec, capacity_problems, fit_pools
    from datapipe.stages.registry import candidate_stage_classes

    declared = [PoolSpec.of(c, quickstart) for c in candidate_stage_classes(quickstart.recipe)]
    two_cores = {"CPU": 2.0}
    assert capacity_problems(two_cores, declared), "the defaults ask for more than 2 cores"
    fitted, note = fit_pools(two_cores, declared)
    assert sum(p.cpus * p.workers for p in fitted) <= 2.0 - READ_TASK_CPUS
    assert capacity_problems(two_cores, fitted) == []
    assert "pin them in execution.stages" in note and "ocr" in note
    roomy, nothing = fit_pools({"CPU": 64.0}, declared)
    assert roomy == declared and nothing == ""

    pinned = load_recipe(write_recipe(tmp_path, {"execution": {"stages": {"ocr": {"cpus": 0.8}}}}))
    pools = [PoolSpec.of(c, pinned) for c in candidate_stage_classes(pinned.recipe)]
    fitted, _ = fit_pools(two_cores, pools)
    assert next(p for p in fitted if p.stage.name == "ocr").cpus == 0.8
    assert sum(p.cpus * p.workers for p in fitted) <= 2.0 - READ_TASK_CPUS
