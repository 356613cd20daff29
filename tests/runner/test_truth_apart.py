"""Truth grades, never builds: the renderer's truth is stored apart and nothing reads it.

The same run with the truth thrown away right after rendering writes the same bytes:
every candidate, verdict, pair and shard comes from the pixels alone.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write_recipe

from datapipe.io.truth_store import TruthStore
from datapipe.loading import load_recipe
from datapipe.records import Candidate, PromptSpec
from datapipe.runner.local import run_local
from datapipe.stages.render import RenderStage

OVERRIDE = {
    "groups": {"single": 3, "rescale": 2, "style": 1, "layout": 1},
    "image": {"long_side": 320},
    "block_size": 3,
    "stages": {"render": {"faults": {"rate": 0.3}}},
}


def files(out: Path) -> dict[str, bytes | dict]:
    """Every file a run wrote but its truth, run.json (times) and rejects (whose fault
    column is filled from the truth, for inspection); ledgers less those files' sizes."""
    found: dict[str, bytes | dict] = {}
    for path in sorted(out.rglob("*")):
        name = str(path.relative_to(out))
        if not path.is_file() or path.name == "run.json" or apart(name):
            continue
        if name.startswith("blocks/") and name.endswith(".json"):
            ledger = json.loads(path.read_text())
            ledger["files"] = {f: size for f, size in ledger["files"].items() if not apart(f)}
            found[name] = ledger
        else:
            found[name] = path.read_bytes()
    return found


def apart(name: str) -> bool:
    return "/truth-" in name or name.endswith("rejects.parquet")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("truth")
    loaded = load_recipe(write_recipe(folder, OVERRIDE))
    graded = folder / "graded"
    run_local(loaded, graded)
    blind = folder / "blind"
    taken = RenderStage.take_truth

    def thrown_away(stage: RenderStage, groups: list) -> dict:
        taken(stage, groups)  # what the renderer knew is dropped the moment it is handed on
        return {}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RenderStage, "take_truth", thrown_away)
        run_local(loaded, blind)
    return graded, blind


def test_throwing_the_truth_away_changes_no_byte(runs):
    graded, blind = runs
    assert TruthStore(graded).blocks() and not TruthStore(blind).blocks()
    written = files(graded)
    assert any(name.startswith("datasets/") for name in written)
    assert written == files(blind)
    for name in ("rejects.parquet",):
        a = pq.read_table(graded / name).drop(["variant"])
        b = pq.read_table(blind / name).drop(["variant"])
        assert a.equals(b)


def test_the_truth_is_stored_apart_with_the_faults_drawn(runs):
    graded, _ = runs
    faults = TruthStore(graded).all_faults()
    assert set(faults.values()) - {"good"}, "a fault rate of 0.3 drew no fault"
    rejects = pq.read_table(graded / "rejects.parquet").to_pylist()
    labelled = {r["candidate_key"]: r["variant"] for r in rejects if r["stage"] == "filter"}
    assert labelled and all(faults[key] == kind for key, kind in labelled.items())
    store = TruthStore(graded)
    entry = next(e for b in store.blocks() for e in store.load(b).values() if e.mask)
    assert entry.truth.text_boxes or entry.truth.fault in ("missing_text", "blank")


def test_records_handed_to_stages_carry_no_truth_and_no_fault():
    assert "truth" not in {f.name for f in dataclasses.fields(Candidate)}
    assert "variant" not in {f.name for f in dataclasses.fields(PromptSpec)}
