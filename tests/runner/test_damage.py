"""Damaged outputs: the rerun finds each kind of damage, redoes only what was lost, and
`datapipe verify` ends clean; a full disk stops a run cleanly and a rerun finishes it."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess

import pytest
from conftest import write_recipe
from helpers import SMALL, run_command
from shards import tree_digest

from datapipe.loading import load_recipe
from datapipe.runner.local import run_local
from datapipe.verify import verify

pytestmark = pytest.mark.timeout(600)
LIMIT = 12  # four blocks of three groups


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("damage")
    recipe = write_recipe(folder, SMALL)
    run_local(load_recipe(recipe), folder / "out", limit=LIMIT)
    return recipe, folder / "out", tree_digest(folder / "out")


def ledger(out, block):
    return json.loads((out / "blocks" / f"block-{block:06d}.json").read_text())


def block_shard(out, block, suffix):
    name = next(
        n for n in ledger(out, block)["files"] if n.startswith("datasets/") and n.endswith(suffix)
    )
    return out / name


def truncate_candidate_tar(out):
    tar = out / "candidates" / "cand-000001.tar"
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])


def delete_a_shard_tar(out):
    block_shard(out, 2, ".tar").unlink()


def delete_a_manifest(out):
    block_shard(out, 3, ".parquet").unlink()


def empty_a_stats_file(out):
    (out / "datasets" / "train" / "fill" / "__manifests__" / "stats.json").write_bytes(b"")


DAMAGE = {
    "truncated_candidate_tar": (truncate_candidate_tar, "rerender"),
    "manifest_without_its_tar": (delete_a_shard_tar, "from_store"),
    "tar_without_its_manifest": (delete_a_manifest, "from_store"),
    "zero_byte_stats": (empty_a_stats_file, "nothing"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_rerun_repairs_exactly_what_was_damaged(reference, tmp_path, kind):
    recipe, out_ref, expected = reference
    out = tmp_path / "out"
    shutil.copytree(out_ref, out)
    damage, redo = DAMAGE[kind]
    damage(out)
    assert any(check.faults for check in verify(out)), "verify missed the damage"

    summary = run_local(load_recipe(recipe), out, limit=LIMIT)
    assert tree_digest(out) == expected
    assert all(not check.faults for check in verify(out))
    # Blocks after a redone one are committed again from the store (their samples follow
    # its samples in the tasks' shards), never rendered again.
    if redo == "rerender":
        assert summary.blocks_skipped == 1 and summary.rendered == ledger(out, 1)["candidates"]
        assert summary.blocks_from_store == 2
    elif redo == "from_store":
        assert summary.rendered == 0 and summary.blocks_from_store >= 1
        assert summary.blocks_from_store + summary.blocks_skipped == 4
    else:
        assert summary.rendered == 0 and summary.blocks_skipped == 4
    if redo != "nothing":
        assert json.loads((out / "run.json").read_text())["repaired_blocks"]


def limit_file_size(max_bytes: int):
    def apply() -> None:  # runs in the child before exec: only the child is limited
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def test_a_full_disk_stops_the_run_cleanly_and_a_rerun_finishes(reference, tmp_path):
    recipe, _, expected = reference
    out = tmp_path / "out"
    run_local(load_recipe(recipe), out, limit=6)  # two blocks committed with room to spare
    committed = tree_digest(out)
    largest = max(p.stat().st_size for p in out.rglob("*") if p.is_file())
    command = run_command(recipe, out, LIMIT)
    full = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_file_size(largest // 3),
    )
    assert full.returncode == 2, full.stderr
    assert "no space to write block 2" in full.stderr and "Traceback" not in full.stderr
    assert "\n" not in full.stderr.strip()
    after = tree_digest(out)
    for name, digest in committed.items():
        if name.startswith(
            ("blocks/block-000000", "blocks/block-000001", "candidates/cand-000000")
        ):
            assert after[name] == digest, f"a committed file changed: {name}"
    assert not list(out.rglob("*.tmp"))

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert tree_digest(out) == expected
    assert all(not check.faults for check in verify(out))
