"""kill -9 the driver mid-run, rerun: the output equals an uninterrupted run's, byte for byte.

Each test starts `datapipe run` as its own process, watches the output directory for a
state (a committed block, renders stored but not yet sharded, a shard written but its
block not yet ledgered), kills the process with SIGKILL there, and runs it again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write_recipe
from helpers import SMALL, run_command
from shards import tree_digest

from datapipe.loading import load_recipe
from datapipe.runner.local import run_local
from datapipe.verify import verify

pytestmark = pytest.mark.timeout(600)
LIMIT = 15  # five blocks of three groups: each kill point leaves a later block to render


def ledger(out: Path, block: int) -> Path:
    return out / "blocks" / f"block-{block:06d}.json"


def stored(out: Path, block: int) -> bool:
    return (out / "candidates" / f"cand-{block:06d}.parquet").is_file()


POINTS: dict[str, Callable[[Path], bool]] = {
    "between_blocks": lambda out: ledger(out, 1).is_file(),
    "renders_stored_not_sharded": lambda out: stored(out, 2) and not ledger(out, 2).is_file(),
    "shards_written_not_ledgered": lambda out: (
        stored(out, 3) and sharded(out, 3) and not ledger(out, 3).is_file()
    ),
}
"""Polled every 2 ms. A block's shards are written only after its renders are stored, so
`stored` (a stat) gates `sharded` (reads every manifest, ~4 ms): reading them on every
poll took a core from the run it watches."""


def sharded(out: Path, block: int) -> bool:
    """Some samples of `block` are in a shard and its manifest (appended to an open shard
    or in a new one): what a rerun must cut back before committing the block again."""
    for manifest in (out / "datasets").glob("*/*/__manifests__/*.parquet"):
        try:
            blocks = pq.read_table(manifest, columns=["block"]).column(0).to_pylist()
        except OSError:  # renamed away while we looked
            continue
        if block in blocks:
            return True
    return False


def committed_renders(out: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (out / "candidates").glob("cand-*.parquet"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    recipe = write_recipe(folder, SMALL)
    run_local(load_recipe(recipe), folder / "out", limit=LIMIT)
    return recipe, tree_digest(folder / "out")


@pytest.mark.parametrize("point", sorted(POINTS))
def test_kill_then_rerun_gives_the_uninterrupted_output(tmp_path, reference, point):
    recipe, expected = reference
    out = tmp_path / "out"
    process = subprocess.Popen(
        run_command(recipe, out, LIMIT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 300
    while not POINTS[point](out):
        assert process.poll() is None, (
            f"the run ended before reaching {point}: {process.stderr.read()}"
        )
        assert time.monotonic() < deadline, f"never reached {point}"
        time.sleep(0.002)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert json.loads((out / "run.json").read_text())["status"] == "running"

    before = committed_renders(out)
    rerun = subprocess.run(
        run_command(recipe, out, LIMIT), capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    assert tree_digest(out) == expected
    assert all(not check.faults for check in verify(out))

    summary = json.loads((out / "run.json").read_text())["summary"]
    assert summary["rendered_this_run"] == summary["renders"] - before, (
        "a committed render was redone"
    )
