"""The summary the run prints equals what it wrote."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest
from conftest import write_recipe

from datapipe.errors import OutputError
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.truth_store import TruthStore
from datapipe.loading import load_recipe
from datapipe.runner.local import run_local


def test_summary_counts_equal_the_files(quickstart_run, quickstart):
    out, summary = quickstart_run
    candidates = CandidateStore(out).read_table()
    assert candidates.num_rows == summary.renders
    assert len(set(candidates.column("group_id").to_pylist())) == summary.groups
    assert summary.groups == sum(quickstart.recipe.groups.model_dump().values())

    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    filtered = [r for r in rejects if r["stage"] == "filter"]
    assert len({r["candidate_key"] for r in filtered}) == summary.rejected
    assert Counter(r["reason"] for r in filtered) == summary.reject_reasons
    assert (
        Counter(r["reason"] for r in rejects if r["stage"] == "tasks")
        == summary.pair_reject_reasons
    )
    assert summary.kept == summary.renders - summary.rejected
    assert summary.rejected > 0, "the quickstart injects faults: some must be rejected"

    pairs = Counter()
    for manifest in (out / "datasets" / "train").glob("*/__manifests__/*.parquet"):
        table = pq.read_table(manifest, columns=["task", "language"])
        pairs.update(
            zip(table.column("task").to_pylist(), table.column("language").to_pylist(), strict=True)
        )
    assert pairs == summary.pairs

    run = json.loads((out / "run.json").read_text())
    assert run["recipe_hash"] == quickstart.recipe_hash
    assert run["summary"]["pairs_by_task"] == summary.pairs_by_task()
    assert run["summary"]["renders"] == summary.renders
    assert set(run["summary"]["stages"]) >= {"render", "ocr", "tasks", "shards"}


def test_injected_faults_are_all_rejected(quickstart_run):
    out, _ = quickstart_run
    faults = TruthStore(out).all_faults()
    assert set(faults) == set(CandidateStore(out).read_table().column("key").to_pylist())
    rejected = {
        r["candidate_key"]
        for r in pq.read_table(out / "rejects.parquet").to_pylist()
        if r["stage"] == "filter"
    }
    for key, variant in faults.items():
        if variant != "good":
            assert key in rejected, (key, variant)


def test_output_of_another_recipe_is_refused(tmp_path):
    first = load_recipe(write_recipe(tmp_path, {"seed": 1}, name="a.yaml"))
    second = load_recipe(write_recipe(tmp_path, {"seed": 2}, name="b.yaml"))
    run_local(first, tmp_path / "out", limit=1)
    with pytest.raises(OutputError, match="another recipe"):
        run_local(second, tmp_path / "out", limit=1)


def test_a_committed_block_is_not_held_until_the_phase_ends(tmp_path, monkeypatch):
    """A phase's rendered images would otherwise all stay in memory: at 1328 px that is
    megabytes a group, for every group of the run."""
    import gc
    import weakref

    from datapipe.runner import output

    committed: list[weakref.ref] = []
    alive_at_commit: list[int] = []
    ready = output.OrderedCommits.ready

    def watch(self, block, groups, graded):
        gc.collect()
        alive_at_commit.append(sum(ref() is not None for ref in committed))
        committed.extend(weakref.ref(g) for g in groups)
        ready(self, block, groups, graded)

    monkeypatch.setattr(output.OrderedCommits, "ready", watch)
    recipe = write_recipe(tmp_path, {"image": {"long_side": 160}, "block_size": 2})
    summary = run_local(load_recipe(recipe), tmp_path / "out", limit=8)
    assert summary.blocks == 4 and len(alive_at_commit) == 4
    assert alive_at_commit == [0, 0, 0, 0]
