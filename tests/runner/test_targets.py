"""Target-driven runs: rounds until each task's train target is met exactly, samples past
a target recorded as over target, the same bytes on rerun and on resume, in either runner."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write_recipe
from helpers import SMALL
from shards import tree_digest

from datapipe.errors import RecipeError
from datapipe.io.candidate_store import CandidateStore
from datapipe.loading import load_recipe
from datapipe.plan import plan_groups, renders_per_group
from datapipe.planner import OVER_TARGET, Planner
from datapipe.runner.local import run_local

pytestmark = pytest.mark.timeout(900)

TARGETS = {"extend": 10, "fill": 8, "identity": 8, "rescale": 3, "style": 3, "layout": 3}
DATA = {
    **SMALL,
    "groups": {"single": 3, "rescale": 1, "style": 1, "layout": 1},
    "targets": {"pairs": TARGETS},
}
"""Round 1: 6 groups (11 renders) in blocks of 3, short of every target."""


def written(out: Path) -> Counter[str]:
    """Train samples per task, counted from the shard manifests."""
    rows: Counter[str] = Counter()
    for manifest in sorted((out / "datasets" / "train").glob("*/__manifests__/*.parquet")):
        rows.update(pq.read_table(manifest, columns=["task"]).column(0).to_pylist())
    return rows


def ledgers(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "blocks").glob("block-*.json"))]


@pytest.fixture(scope="module")
def target_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("targets")
    recipe = write_recipe(folder, DATA)
    run_local(load_recipe(recipe), folder / "out")
    return recipe, folder / "out", tree_digest(folder / "out")


def test_each_target_is_met_exactly_within_three_rounds(target_run):
    _, out, _ = target_run
    assert written(out) == Counter(TARGETS)
    run = json.loads((out / "run.json").read_text())
    report = run["targets"]
    assert report["complete"] and not report["short"]
    assert 2 <= len(report["rounds"]) <= 3
    assert report["rounds"][0]["by_kind"] == DATA["groups"]
    assert {t: row["written"] for t, row in report["tasks"].items()} == TARGETS
    assert run["summary"]["pairs_by_task"] == TARGETS
    # every sample past a target is a counted, stored rejection, none dropped silently
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    over = Counter(r["task"] for r in rejects if r["reason"] == OVER_TARGET)
    assert sum(over.values()) > 0
    for task, row in report["tasks"].items():
        assert row["made"] == row["written"] + row["over_target"] == TARGETS[task] + over[task]
    assert run["summary"]["pair_reject_reasons"][OVER_TARGET] == sum(over.values())
    # later rounds are new groups after the train plan, each block of one round
    blocks = ledgers(out)
    assert len({g for b in blocks for g in b["groups"]}) == sum(len(b["groups"]) for b in blocks)
    assert sum(len(b["groups"]) for b in blocks) == sum(r["groups"] for r in report["rounds"])


def test_the_planner_replays_the_rounds_from_the_ledgers(target_run):
    """A new planner told the ledgers in block order plans the same rounds."""
    recipe, out, _ = target_run
    planner = Planner(load_recipe(recipe))
    by_block = {b["block"]: b for b in ledgers(out)}
    while (phase := planner.next_phase()) is not None:
        for block, groups in sorted(phase.blocks.items()):
            assert by_block[block]["groups"] == [g.group_id for g in groups]
            planner.remember(phase.split, by_block.pop(block))
    assert not by_block
    run = json.loads((out / "run.json").read_text())
    assert planner.report()["targets"] == run["targets"]


def test_a_rerun_and_a_resumed_run_write_the_same_bytes(target_run, tmp_path):
    """A rerun of the finished output changes nothing. Then the ledgers of the first
    round's last block and of every later one are dropped and the last block's renders
    lost: the rerun replans the later rounds from the ledgers left, rebuilds the stored
    blocks, renders only the lost one, and writes every byte as the uninterrupted run did."""
    recipe, out, expected = target_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    again = run_local(load_recipe(recipe), copy)
    assert again.rendered == 0 and tree_digest(copy) == expected
    first_round = sum(DATA["groups"].values())
    blocks = [b["block"] for b in ledgers(copy)]
    rounds = [b for b in blocks if min_index(copy, b) >= first_round]
    assert rounds
    later = blocks[-len(rounds) - 1 :]  # the first round's last block, and every later one
    for block in later:
        (copy / "blocks" / f"block-{block:06d}.json").unlink()
    lost = later[-1]
    renders = sum(1 for r in CandidateStore(copy).read_table().to_pylist() if r["block"] == lost)
    for path in CandidateStore(copy).paths(lost):
        path.unlink()
    summary = run_local(load_recipe(recipe), copy)
    assert summary.rendered == renders
    assert summary.blocks_from_store == len(later) - 1
    assert tree_digest(copy) == expected


def test_a_pilot_renders_its_groups_only_and_a_full_run_finishes_it(target_run, tmp_path):
    """`--limit` on a target recipe is a pilot: its first groups, no later round (one
    planned from them would not be the full run's); finishing it writes every byte the
    uninterrupted run did."""
    recipe, _, expected = target_run
    out = tmp_path / "out"
    loaded = load_recipe(recipe)
    pilot = run_local(loaded, out, limit=2)
    slots = plan_groups(loaded, 2)
    assert pilot.rendered == sum(renders_per_group(loaded.recipe, s.kind) for s in slots)
    assert not json.loads((out / "run.json").read_text())["targets"]["complete"]
    run_local(loaded, out)
    assert tree_digest(out) == expected


def min_index(out: Path, block: int) -> int:
    rows = CandidateStore(out).read_table().select(["block", "group_index"]).to_pylist()
    return min(r["group_index"] for r in rows if r["block"] == block)


def test_the_ray_runner_follows_the_targets_the_same_way(target_run, tmp_path, ray_session):
    from datapipe.runner.ray_runner import run_ray

    recipe, _, expected = target_run
    run_ray(load_recipe(recipe), tmp_path / "ray")
    assert tree_digest(tmp_path / "ray") == expected


def test_targets_change_what_is_made_not_what_is_rendered(target_run, tmp_path):
    """Targets are in the recipe hash (an output of other targets is not finished with
    these), not in the generation hash (a group renders the same either way)."""
    recipe, *_ = target_run
    plain = load_recipe(write_recipe(tmp_path, {**DATA, "targets": None}))
    loaded = load_recipe(recipe)
    assert plain.recipe.targets is None
    assert loaded.generation_hash == plain.generation_hash
    assert loaded.recipe_hash != plain.recipe_hash


def test_a_target_of_a_disabled_task_is_refused(tmp_path):
    data = {**DATA, "tasks": {"style": {"enabled": False}}}
    with pytest.raises(RecipeError, match=r"targets\.pairs: style is not enabled"):
        load_recipe(write_recipe(tmp_path, data))
