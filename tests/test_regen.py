"""`datapipe regen`: one task's split rebuilt from stored renders, atomically, alone."""

from __future__ import annotations

import json
import os
import re
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
    # the card's counts and rejects.parquet follow the regenerated task
    follow = {"datasets/README.md", "rejects.parquet"}
    assert changed and all(n.startswith("datasets/train/fill/") or n in follow for n in changed)
    assert any(name.endswith(".tar") for name in changed)

    full = tree_digest(folder / "b")
    record = "datasets/train/fill/__manifests__/regen/rejects.parquet"  # what regen removed
    rebuilt = {n for n in after if n.startswith("datasets/train/fill/")} - {record}
    for name in rebuilt:
        if not name.endswith("stats.json"):
            assert full[name] == after[name], name
    assert {n for n in full if n.startswith("datasets/train/fill/")} == rebuilt
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


def _manifest_rows(out, split="train"):
    return [
        row
        for manifest in sorted((out / "datasets" / split).glob("*/__manifests__/*.parquet"))
        for row in pq.read_table(manifest, columns=["task", "language", "target_key"]).to_pylist()
    ]


def test_after_regen_rejects_summary_and_card_state_what_is_on_disk(runs, tmp_path):
    """A stricter regen of fill: the samples it removed are in rejects.parquet (with the
    reason, for fill only), and run.json, a rerun's summary and the card count the shards."""
    from collections import Counter

    folder, recipe_a, recipe_b = runs
    out = copy_of(runs, tmp_path)
    before = _manifest_rows(out)
    report = regen(out, "fill", recipe=recipe_b)
    after = _manifest_rows(out)
    assert report.samples_after < report.samples_before

    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    fill_rows = [r for r in rejects if r["task"] == "fill"]
    kept_keys = {r["target_key"] for r in after if r["task"] == "fill"}
    removed = {r["target_key"] for r in before if r["task"] == "fill"} - kept_keys
    assert removed
    assert removed <= {r["candidate_key"] for r in fill_rows}, "a removed sample has no reason"
    newly = [r for r in fill_rows if r["stage"] == "filter"]
    assert newly and {r["reason"] for r in newly} == {"subject_too_large"}
    assert all(json.loads(r["scores_json"])["subject.area"] > 0.12 for r in newly)
    # the other tasks keep the rejects their blocks committed
    original = pq.read_table(folder / "a" / "rejects.parquet").to_pylist()
    assert [r for r in rejects if r["task"] != "fill"] == [
        r for r in original if r["task"] != "fill"
    ]
    assert all(not check.faults for check in verify(out))

    on_disk = Counter((r["task"], r["language"]) for r in after)
    pair_rejects = Counter(r["reason"] for r in rejects if r["stage"] == "tasks")
    regen_rejects = Counter(
        (f"train/{r['task']}", r["reason"]) for r in rejects if r["stage"] == "filter" and r["task"]
    )
    recorded = json.loads((out / "run.json").read_text())["summary"]
    assert recorded["pairs"] == len(after)
    assert recorded["pairs_by_task"]["fill"] == len(kept_keys) == report.samples_after
    assert recorded["pair_reject_reasons"] == dict(sorted(pair_rejects.items()))

    summary = run_local(load_recipe(recipe_a), out, limit=LIMIT)  # the original command again
    assert summary.blocks_skipped == summary.blocks and summary.rendered == 0
    assert summary.pairs == on_disk
    assert summary.pair_reject_reasons == pair_rejects
    assert summary.regen_reject_reasons == regen_rejects
    assert _manifest_rows(out) == after
    assert json.loads((out / "run.json").read_text())["summary"]["pairs"] == len(after)
    printed = CliRunner().invoke(
        app, ["run", str(recipe_a), "--out", str(out), "--limit", str(LIMIT)], terminal_width=200
    )
    assert printed.exit_code == 0, printed.output
    assert re.findall(r"^│ pairs +│ (\d+) +│", printed.output, re.M) == [str(len(after))]
    assert all(not check.faults for check in verify(out))

    # the report and the inspection API: rejected for fill only, kept for the others
    from datapipe.inspect import open_output
    from datapipe.report.build import build_report

    kept = {row["key"]: row["kept"] for row in open_output(out).candidate_rows()}
    assert all(kept[r["candidate_key"]] for r in newly)
    result = build_report(out, tmp_path / "report", max_samples=2, rejects_per_reason=1)
    page = (result.root / "rejects.html").read_text()
    span = 'data-stage="filter" data-reason="subject_too_large" data-task="fill"'
    assert f"{span}>{len(newly)}</span>" in page
    everywhere = {r["candidate_key"] for r in rejects if r["stage"] == "filter" and not r["task"]}
    assert f'data-total="filter-candidates">{len(everywhere)}</span>' in page

    card = (out / "datasets" / "README.md").read_text()
    fill_lines = [line for line in card.splitlines() if line.startswith("| train | fill |")]
    assert sum(int(line.rstrip(" |").rsplit("|", 1)[1]) for line in fill_lines) == len(kept_keys)
    scope = "| subject_too_large | the render, for fill (regen) |"
    assert f"{scope} {len(newly)} |" in card
