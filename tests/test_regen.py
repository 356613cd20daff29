"""`datapipe regen`: one task's split rebuilt from stored renders, atomically, alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from conftest import merge, write_recipe
from helpers import SMALL
from shards import tree_digest
from typer.testing import CliRunner

from datapipe.cli import app
from datapipe.errors import OutputError
from datapipe.io.layout import OutputLayout
from datapipe.loading import load_recipe
from datapipe.plan import plan_groups
from datapipe.regen import regen
from datapipe.runner.local import run_local
from datapipe.verify import verify

pytestmark = pytest.mark.timeout(600)
LIMIT = 12
TIGHTER = {"thresholds": {"subject_too_large": {"score": "subject.area", "max": 0.12}}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished run under recipe A, and a full run under the tighter recipe B."""
    folder = tmp_path_factory.mktemp("regen")
    recipe_a = write_recipe(folder, SMALL, name="a.yaml")
    recipe_b = write_recipe(folder, merge(SMALL, TIGHTER), name="b.yaml")
    run_local(load_recipe(recipe_a), folder / "a", limit=LIMIT)
    run_local(load_recipe(recipe_b), folder / "b", limit=LIMIT)
    return folder, recipe_a, recipe_b


def copy_of(runs, tmp_path):
    import shutil

    folder, _, _ = runs
    shutil.copytree(folder / "a", tmp_path / "out")
    return tmp_path / "out"


def test_regen_changes_only_its_task_and_equals_a_full_run(runs, tmp_path):
    folder, _, recipe_b = runs
    out = copy_of(runs, tmp_path)
    before = tree_digest(out)
    result = CliRunner().invoke(
        app, ["regen", "--out", str(out), "--task", "fill", "--recipe", str(recipe_b)]
    )
    assert result.exit_code == 0, result.output
    assert "no render" in result.output
    after = tree_digest(out)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    card = {"datasets/README.md"}  # the card's counts follow the regenerated task
    assert changed and all(n.startswith("datasets/train/fill/") or n in card for n in changed)
    assert any(name.endswith(".tar") for name in changed)

    full = tree_digest(folder / "b")
    for name, digest in after.items():
        if name.startswith("datasets/train/fill/") and not name.endswith("stats.json"):
            assert full[name] == digest, name
    assert {n for n in full if n.startswith("datasets/train/fill/")} == {
        n for n in after if n.startswith("datasets/train/fill/")
    }
    stats = json.loads((out / "datasets/train/fill/__manifests__/stats.json").read_text())
    full_stats = json.loads((folder / "b/datasets/train/fill/__manifests__/stats.json").read_text())
    assert (
        stats["samples"]
        == full_stats["samples"]
        < json.loads((folder / "a/datasets/train/fill/__manifests__/stats.json").read_text())[
            "samples"
        ]
    )
    assert stats["regeneration"]["recipe_hash"] == load_recipe(recipe_b).recipe_hash
    run = json.loads((out / "run.json").read_text())
    (record,) = run["regenerations"]
    assert record["task"] == "fill" and record["samples_after"] == stats["samples"]
    assert all(not check.faults for check in verify(out))


def test_regen_refuses_what_it_cannot_do(runs, tmp_path):
    out = copy_of(runs, tmp_path)
    other = write_recipe(tmp_path, merge(SMALL, {"seed": 7}), name="other.yaml")
    with pytest.raises(OutputError, match="other posters"):
        regen(out, "fill", recipe=other)
    with pytest.raises(OutputError, match="not in the train split"):
        regen(out, "painting")
    with pytest.raises(OutputError, match="makes only train"):
        regen(out, "fill", split="bench")


def test_a_swap_cut_between_its_two_renames_restores_the_old_split(runs, tmp_path):
    out = copy_of(runs, tmp_path)
    before = tree_digest(out)
    _, old = OutputLayout(out).staging("train", "fill")
    old.parent.mkdir(parents=True)
    (out / "datasets/train/fill").rename(old)
    assert OutputLayout(out).recover() == ["restored train/fill"]
    assert tree_digest(out) == before


def test_kill_during_regen_leaves_the_old_split_then_regen_completes(runs, tmp_path):
    _, _, recipe_b = runs
    out = copy_of(runs, tmp_path)
    fill = out / "datasets" / "train" / "fill"
    old_fill = {k: v for k, v in tree_digest(out).items() if k.startswith("datasets/train/fill/")}
    new, _ = OutputLayout(out).staging("train", "fill")
    command = [
        sys.executable, "-m", "datapipe.cli", "regen", "--out", str(out),
        "--task", "fill", "--recipe", str(recipe_b),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not any(new.rglob("*.tar")):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    now = {k: v for k, v in tree_digest(out).items() if k.startswith("datasets/train/fill/")}
    assert now == old_fill, "a killed regen touched the live split"
    assert fill.is_dir()
    assert any("interrupted regen" in f for c in verify(out) for f in c.faults)

    report = regen(out, "fill", recipe=recipe_b)
    assert report.samples_after < report.samples_before
    assert all(not check.faults for check in verify(out))


def test_rerender_renders_only_the_groups_the_task_lacks(runs, tmp_path):
    """Train: each group that gives fill no sample under the new recipe is rendered once
    more under a new id (so new seeds), as new blocks; other tasks and renders stay."""
    _, _, recipe_b = runs
    out = copy_of(runs, tmp_path)
    before = tree_digest(out)
    plain = regen(out, "fill", recipe=recipe_b)
    assert plain.samples_after < plain.samples_before
    served = set()
    for manifest in (out / "datasets/train/fill/__manifests__").glob("*.parquet"):
        served |= set(pq.read_table(manifest, columns=["group_id"]).column(0).to_pylist())
    planned = {g.group_id for g in plan_groups(load_recipe(recipe_b), LIMIT)}
    lacking = planned - served
    assert lacking

    report = regen(out, "fill", recipe=recipe_b, rerender=True)
    after = tree_digest(out)
    changed = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
    allowed = ("datasets/train/fill/", "candidates/", "blocks/", "rejects.parquet")
    allowed += ("datasets/README.md",)  # the card's counts follow the task
    assert all(n.startswith(allowed) for n in changed), changed
    kept_files = [n for n in before if n.startswith(("candidates/", "blocks/"))]
    assert all(after[n] == before[n] for n in kept_files)  # old renders untouched
    new_store = sorted(n for n in changed if n.startswith("candidates/") and n.endswith(".parquet"))
    rows = [r for n in new_store for r in pq.read_table(out / n).to_pylist()]
    assert {r["group_id"] for r in rows} == {g + "-r1" for g in lacking}
    assert report.rendered == len(rows)
    old_seeds = {
        r["seed"] for n in kept_files if n.endswith(".parquet") and n.startswith("candidates/")
        for r in pq.read_table(out / n).to_pylist()
    }  # fmt: skip
    assert old_seeds.isdisjoint(r["seed"] for r in rows)
    assert report.samples_after > plain.samples_after
    assert all(not check.faults for check in verify(out)), [
        f for c in verify(out) for f in c.faults
    ]

    again = regen(out, "fill", recipe=recipe_b, rerender=True)
    assert again.rendered == 0  # each lacking group is tried once
