"""The bench split: quotas met exactly, disjoint from train, resumable, regenerable."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import imagehash
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import ROOT, merge
from helpers import RAY_EXECUTION
from shards import tree_digest
from typer.testing import CliRunner

from datapipe.bench import BenchState
from datapipe.cli import app
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.tar import read_tar
from datapipe.loading import load_recipe
from datapipe.plan import bench_cells
from datapipe.regen import regen
from datapipe.runner.local import run_local
from datapipe.verify import verify

pytestmark = pytest.mark.timeout(600)

THEMES = ["food", "nature"]
QUOTAS = {"zh": 3, "en": 2}
"""Per task: 3 zh over two themes is 2 + 1, so the remainder rule is exercised."""

SMALL_BENCH = {
    "themes": THEMES,
    "groups": {"single": 6, "rescale": 2, "style": 2, "layout": 2},
    "image": {"long_side": 320},
    "stages": {"ocr": {"det_limit_side_len": 320}},
    "block_size": 6,
    "bench": {"quotas": QUOTAS},
    "execution": RAY_EXECUTION,
}


def bench_data(override: dict | None = None) -> dict:
    data = yaml.safe_load((ROOT / "pipelines" / "bench.yaml").read_text(encoding="utf-8"))
    data["libraries"] = {
        "entities": str(ROOT / "entity_libraries"),
        "styles": str(ROOT / "style_libraries"),
        "prompts": str(ROOT / "prompts"),
    }
    return merge(merge(data, SMALL_BENCH), override or {})


def write(folder: Path, data: dict, name: str = "bench.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    recipe = write(folder, bench_data())
    run_local(load_recipe(recipe), folder / "out")
    return folder, recipe, folder / "out"


def manifest_rows(out: Path, split: str) -> list[dict]:
    rows = []
    for manifest in sorted((out / "datasets" / split).glob("*/__manifests__/*.parquet")):
        rows += pq.read_table(manifest).to_pylist()
    return rows


def store_rows(out: Path) -> dict[str, dict]:
    return {r["key"]: r for r in CandidateStore(out).read_table().to_pylist()}


def test_quotas_are_met_exactly_counted_from_the_shards(bench_run):
    _, recipe, out = bench_run
    counts = Counter()
    for tar in sorted((out / "datasets" / "bench").glob("*/*.tar")):
        for _, files in read_tar(tar):
            meta = json.loads(files["json"])
            assert meta["split"] == "bench"
            counts[(meta["task"], meta["language"], meta["theme"])] += 1
    expected = {
        (c.task, c.language, c.theme): c.quota for c in bench_cells(load_recipe(recipe).recipe)
    }
    assert counts == expected
    per_task = Counter()
    for (task, language, _), n in counts.items():
        per_task[(task, language)] += n
    assert set(per_task.values()) == set(QUOTAS.values())
    assert len(per_task) == 6 * 2
    for task, language in per_task:
        themes = [counts[(task, language, t)] for t in THEMES]
        assert max(themes) - min(themes) <= 1, (task, language, themes)
    run = json.loads((out / "run.json").read_text())
    assert run["bench"]["complete"] and not run["bench"]["unfilled"]
    assert run["summary"]["bench_pairs"] == sum(QUOTAS.values()) * 6


def test_each_bench_sample_has_its_own_group_and_is_judged(bench_run):
    _, _, out = bench_run
    rows = manifest_rows(out, "bench")
    groups = [r["group_id"] for r in rows]
    assert len(groups) == len(set(groups))  # one prompt per benchmark sample
    for tar in sorted((out / "datasets" / "bench").glob("*/*.tar")):
        for _, files in read_tar(tar):
            meta = json.loads(files["json"])
            judge = meta["judge"]
            assert judge["backend"] == "rules" and judge["suitable"] is True
            assert all(
                judge["scores"][k] >= v for k, v in {"text_accuracy": 4, "task_fit": 3}.items()
            )
            if meta["task"] in ("fill", "identity"):
                assert "mask.png" in files or meta["task"] == "identity"
                assert meta["params"].get("mask_kind", "subject") == "subject"


def test_bench_is_disjoint_from_train(bench_run):
    """Checked here from the files themselves, independently of `datapipe verify`."""
    _, recipe, out = bench_run
    store = store_rows(out)

    def used(split: str) -> list[dict]:
        keys = set()
        for row in manifest_rows(out, split):
            keys |= {row["target_key"], *row["source_keys"]}
        return [store[k] for k in sorted(keys)]

    train, bench = used("train"), used("bench")
    assert train and bench
    assert not {r["group_id"] for r in train} & {r["group_id"] for r in bench}
    pairs = {(r["entity_id"], r["style_id"]) for r in train}
    assert not pairs & {(r["entity_id"], r["style_id"]) for r in bench}
    distance = load_recipe(recipe).recipe.near_duplicate_distance("bench")
    hashes = [imagehash.hex_to_hash(r["phash"]) for r in train]
    for row in bench:
        value = imagehash.hex_to_hash(row["phash"])
        assert min(value - h for h in hashes) > distance, row["key"]
    checks = {c.name: c for c in verify(out)}
    assert all(not c.faults for c in checks.values()), {n: c.faults for n, c in checks.items()}
    assert checks["bench disjoint from train"].checked == len(bench)


def test_every_unused_bench_sample_is_a_recorded_rejection(bench_run):
    _, _, out = bench_run
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    reasons = Counter(r["reason"] for r in rejects)
    assert reasons["bench_spare"] > 0  # pair groups make 2 samples; one is taken
    run = json.loads((out / "run.json").read_text())
    for quota in run["bench"]["quotas"]:
        failed = quota["groups"] - quota["passed"]
        assert sum(quota["reasons"].values()) == failed
        assert quota["accepted"] == quota["quota"] <= quota["passed"]


def test_a_resumed_bench_run_equals_an_uninterrupted_one(bench_run, tmp_path):
    """Drop the last bench round's ledgers and one block's renders: the rerun replays the
    rounds from the ledgers, rebuilds stored blocks and renders only the lost one."""
    _, recipe, out = bench_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    ledgers = sorted((copy / "blocks").glob("block-*.json"))
    bench_blocks = [p for p in ledgers if json.loads(p.read_text())["split"] == "bench"]
    assert len(bench_blocks) >= 2
    for ledger in bench_blocks[-2:]:
        ledger.unlink()
    lost = int(bench_blocks[-1].stem.split("-")[1])
    for path in CandidateStore(copy).paths(lost):
        path.unlink()
    expected_renders = sum(
        1 for r in CandidateStore(out).read_table().to_pylist() if r["block"] == lost
    )
    summary = run_local(load_recipe(recipe), copy)
    assert summary.rendered == expected_renders
    assert summary.blocks_from_store == 1
    assert tree_digest(copy) == tree_digest(out)


def test_an_unfillable_quota_is_reported_with_its_reasons(tmp_path):
    """A bench rule no render can pass: the rounds stop at max_rounds, the run finishes,
    and every short quota says how short and why."""
    data = bench_data(
        {
            "groups": {"single": 2, "rescale": 0, "style": 0, "layout": 0},
            "bench": {
                "quotas": {"zh": 1, "en": 1},
                "tasks": ["fill"],
                "thresholds": {"contrast_unreachable": {"score": "quality.contrast", "min": 1.0}},
                "oversample": {"max_rounds": 2, "initial_acceptance": 1.0, "margin": 1.0},
            },
        }
    )
    recipe = write(tmp_path, data)
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    bench = run["bench"]
    assert not bench["complete"] and len(bench["rounds"]) == 2
    assert len(bench["unfilled"]) == len(bench["quotas"]) == 2
    for quota in bench["unfilled"]:
        assert quota["accepted"] == 0 and quota["groups"] > 0
        assert "max_rounds (2) reached" in quota["why"]
        assert "groups failed for: " in quota["why"] and "no recorded reason" not in quota["why"]
    assert result.output.count("not filled") == 2
    # every bench render failed the unreachable rule (the why names each group's first reason)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    bench = {r["candidate_key"] for r in rejects if r["reason"] == "contrast_unreachable"}
    assert len(bench) >= 4
    checks = {c.name: c for c in verify(tmp_path / "out")}
    assert not checks["bench quotas met"].faults  # short, but exactly as reported


def test_regen_of_a_bench_task_touches_only_it_and_rerender_refills(bench_run, tmp_path):
    _, _, out = bench_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    tighter = bench_data(
        {
            "bench": {
                "thresholds": {"subject_missing": {"score": "subject.area", "min": 0.1}},
                "oversample": {"max_groups_per_sample": 30},
            }
        }
    )
    recipe = write(tmp_path, tighter, "tighter.yaml")
    before = tree_digest(copy)
    report = regen(copy, "fill", "bench", recipe)
    assert report.rendered == 0 and report.samples_after < report.samples_before
    after = tree_digest(copy)
    changed = {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}
    # the card counts what is there; rejects.parquet lists what regen removed
    told = ("datasets/README.md", "datasets/croissant.json", "rejects.parquet")
    assert changed and all(n.startswith(("datasets/bench/fill/", *told)) for n in changed), changed
    rows = pq.read_table(copy / "rejects.parquet").to_pylist()
    removed = [r for r in rows if r["task"] == "fill" and r["reason"] == "subject_missing"]
    assert len(removed) >= report.samples_before - report.samples_after
    run = json.loads((copy / "run.json").read_text())
    assert not run["bench"]["complete"]
    assert {q["task"] for q in run["bench"]["unfilled"]} == {"fill"}

    report = regen(copy, "fill", "bench", recipe, rerender=True)
    assert report.rendered > 0 and report.samples_after == sum(QUOTAS.values())
    final = tree_digest(copy)
    changed = {n for n in after.keys() | final.keys() if after.get(n) != final.get(n)}
    allowed = ("datasets/bench/fill/", "candidates/", "blocks/", *told)
    assert all(n.startswith(allowed) for n in changed), changed
    assert all(final[n] == before[n] for n in before if not n.startswith(allowed))
    run = json.loads((copy / "run.json").read_text())
    assert run["bench"]["complete"]
    checks = verify(copy)
    assert all(not c.faults for c in checks), [f for c in checks for f in c.faults]


def test_state_replays_from_ledgers(bench_run):
    """The quota account rebuilt from block ledgers is the one the run reported."""
    _, recipe, out = bench_run
    state = BenchState(load_recipe(recipe))
    for path in sorted((out / "blocks").glob("block-*.json")):
        ledger = json.loads(path.read_text())
        if ledger["split"] == "bench":
            state.remember(ledger["bench"])
    run = json.loads((out / "run.json").read_text())
    assert state.report()["quotas"] == run["bench"]["quotas"]
