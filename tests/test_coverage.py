"""Coverage per entity, style, layout, theme and language: counted from the files on disk."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
from typer.testing import CliRunner

from datapipe.cli import app
from datapipe.coverage import DIMENSIONS, coverage
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.layout import dataset_manifests


def test_counts_equal_the_store_rejects_and_manifests(quickstart_run):
    out, summary = quickstart_run
    found = coverage(out)
    store = CandidateStore(out).read_table().to_pylist()
    for dimension in DIMENSIONS:
        rows = found.counts[dimension]
        assert sum(v["renders"] for v in rows.values()) == len(store) == summary.renders
        assert sum(v["kept"] for v in rows.values()) == summary.kept
    by_key = {row["key"]: row for row in store}
    samples = Counter()
    for manifest in dataset_manifests(out / "datasets"):
        for row in pq.read_table(manifest, columns=["task", "target_key"]).to_pylist():
            samples[(by_key[row["target_key"]]["entity_id"], row["task"])] += 1
    for (entity, task), n in samples.items():
        assert found.counts["entity_id"][entity][task] == n
    assert sum(v["samples"] for v in found.counts["style_id"].values()) == sum(samples.values())
    assert json.loads((out / "run.json").read_text())["coverage"] == json.loads(
        json.dumps(found.to_dict())
    )
    least = found.least("entity_id", 3)
    assert [v["samples"] for _, v in least] == sorted(v["samples"] for _, v in least)


def test_the_run_summary_shows_coverage(tmp_path):
    from conftest import write_recipe

    recipe = write_recipe(tmp_path)
    result = CliRunner().invoke(
        app, ["run", str(recipe), "--out", str(tmp_path / "out"), "--limit", "3", "-q"],
        terminal_width=200,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "coverage (run.json: coverage)" in result.output
    assert "entity" in result.output and "style" in result.output


def test_a_missed_coverage_floor_is_reported_not_fatal(tmp_path):
    from conftest import write_recipe

    from datapipe.io.layout import OutputLayout
    from datapipe.loading import load_recipe
    from datapipe.plan import recipe_entities

    recipe = write_recipe(tmp_path, {"coverage": {"min_samples_per_entity_task": 2}})
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["run", str(recipe), "--out", str(out), "--limit", "8", "-q"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    loaded = load_recipe(recipe)
    by_key = {row["key"]: row for row in CandidateStore(out).read_table().to_pylist()}
    samples = Counter()
    for manifest in OutputLayout(out).shard_manifests():
        for row in pq.read_table(manifest, columns=["task", "target_key"]).to_pylist():
            samples[(by_key[row["target_key"]]["entity_id"], row["task"])] += 1
    tasks = loaded.recipe.tasks.enabled()
    entities = recipe_entities(loaded)
    under = {(e, t) for e in entities for t in tasks if samples[(e, t)] < 2}
    assert any(samples[(e, t)] >= 2 for e in entities for t in tasks)  # some cells are met
    floor = json.loads((out / "run.json").read_text())["coverage_floor"]
    assert floor["cells"] == len(entities) * len(tasks)
    assert floor["missed"] == len(under) and not floor["met"]
    fewest = [(m["entity_id"], m["task"]) for m in floor["fewest"]]
    assert set(fewest) <= under and [m["samples"] for m in floor["fewest"]] == sorted(
        m["samples"] for m in floor["fewest"]
    )
    assert "coverage floor missed" in result.output
    assert loaded.recipe_hash == load_recipe(write_recipe(tmp_path, name="plain.yaml")).recipe_hash
