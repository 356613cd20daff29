"""The benchmark harness: figures against targets, and one benchmark end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _common import Figure, Result
from conftest import ROOT
from run import BENCHMARKS, table


def test_a_figure_is_met_by_its_target_in_either_direction():
    assert Figure("duty", 0.98, ">= 0.97").met is True
    assert Figure("duty", 0.96, ">= 0.97").met is False
    assert Figure("cpu", 1.2, "<= 1.7").met is True
    assert Figure("cpu", 2.0, "<= 1.7").met is False
    assert Figure("info", 3.0).met is None
    assert Figure("missing", None, ">= 1").met is None


def test_the_table_shows_every_figure_and_skipped_benchmarks():
    result = Result("P9", "a over b", [Figure("ratio", 0.5, ">= 0.9", note="slow")]).to_dict()
    skipped = Result("P1 GPU", "x", skipped="no CUDA device").to_dict()
    rendered = table([result, skipped])
    cells = [cell for column in rendered.columns for cell in column._cells]
    assert "ratio" in cells and "0.5" in cells and ">= 0.9" in cells and "[red]NO[/]" in cells
    assert any("no CUDA device" in str(cell) for cell in cells)


@pytest.mark.slow
def test_run_py_runs_a_benchmark_and_writes_every_figure(tmp_path):
    out = tmp_path / "results.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"]
    subprocess.run([*command, "--only", "shard_write", "--json", str(out)], check=True)
    (result,) = json.loads(out.read_text())["results"]
    assert not result.get("skipped"), result.get("skipped")
    names = {f["name"]: f for f in result["figures"]}
    ratio = names["ShardSink / ShardWriter samples/s"]
    assert ratio["value"] > 0 and ratio["target"] == ">= 0.9" and ratio["met"] in (True, False)
    assert all(f["value"] is not None for f in result["figures"])
    assert result["raw"]["samples"] == 100 and len(result["raw"]["sink_seconds"]) == 5


def test_every_benchmark_file_is_run_and_says_what_it_compares():
    files = {p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_")}
    assert files - {"run"} == set(BENCHMARKS)
    for name in BENCHMARKS:
        docstring = (ROOT / "benchmarks" / f"{name}.py").read_text().split('"""')[1]
        assert "Compares" in docstring, name
