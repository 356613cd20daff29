"""The output directory's layout, named once: every path a run, regen, verify, the
inspection API and the report read or write, and the staging and recovery of a task's
split while regen swaps it.

```
OUT/run.json                                    resolved recipe, hashes, versions, timings
OUT/blocks/block-NNNNNN.json                    a block's ledger (its commit mark)
OUT/blocks/block-NNNNNN.rejects.parquet         the block's rejects
OUT/candidates/cand-NNNNNN.{tar,parquet}        every render of the block, kept or not
OUT/datasets/{split}/{task}/*.tar               shards; __manifests__/: manifests, stats.json
OUT/datasets/{split}/{task}/__manifests__/regen/rejects.parquet   the task's rejects, by regen
OUT/rejects.parquet                             every block's rejects, merged (io.rejects)
OUT/cache/{llm,judge}/                          API response caches
OUT/.regen/{split}-{task}.{new,old}             regen's staged and replaced split
```

A foundation module (paths only), so readers and writers of every layer share it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUN_JSON = "run.json"
DATASETS = "datasets"
STATS_JSON = "stats.json"
MANIFESTS = "__manifests__"
"""A task folder's manifests and stats.json: a folder no WebDataset reader lists (HF datasets
skips `__*` folders, Ray Data `_*`), so a task folder holds only its shards to a loader."""
CANDIDATE_PREFIX = "cand-"
STAGING = ".regen"
"""regen's staging folder: outside datasets/, so no reader ever globs a staged split."""


def candidate_name(block: int) -> str:
    """The candidate store's file stem for a block."""
    return f"{CANDIDATE_PREFIX}{block:06d}"


@dataclass(frozen=True)
class OutputLayout:
    """Paths under one output directory (`root`)."""

    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / RUN_JSON

    @property
    def blocks(self) -> Path:
        return self.root / "blocks"

    @property
    def candidates(self) -> Path:
        return self.root / "candidates"

    @property
    def datasets(self) -> Path:
        return self.root / DATASETS

    @property
    def rejects(self) -> Path:
        return self.root / "rejects.parquet"

    def is_output(self) -> bool:
        """Whether `root` looks like a datapipe output (a run.json or a datasets folder)."""
        return self.run_json.is_file() or self.datasets.is_dir()

    def read_run(self) -> dict[str, Any]:
        """run.json as written (the caller has checked that it exists)."""
        return json.loads(self.run_json.read_text())

    def cache(self, kind: str) -> Path:
        """An API response cache (`llm` for prompt wording, `judge` for the bench judge)."""
        return self.root / "cache" / kind

    def ledger(self, block: int) -> Path:
        return self.blocks / f"block-{block:06d}.json"

    def block_rejects(self, block: int) -> Path:
        return self.blocks / f"block-{block:06d}.rejects.parquet"

    def ledgers(self) -> dict[int, Path]:
        """Every block ledger on disk, by block number."""
        return {int(p.stem.split("-")[1]): p for p in sorted(self.blocks.glob("block-*.json"))}

    def all_block_rejects(self) -> list[Path]:
        return sorted(self.blocks.glob("block-*.rejects.parquet"))

    def candidate_files(self, block: int) -> tuple[Path, Path]:
        """(tar, parquet) of a block in the candidate store."""
        name = candidate_name(block)
        return self.candidates / f"{name}.tar", self.candidates / f"{name}.parquet"

    def candidate_manifests(self) -> list[Path]:
        return sorted(self.candidates.glob(f"{CANDIDATE_PREFIX}*.parquet"))

    def split_dir(self, split: str) -> Path:
        return self.datasets / split

    def task_dir(self, split: str, task: str) -> Path:
        return self.datasets / split / task

    def stats_json(self, split: str, task: str) -> Path:
        return stats_path(self.task_dir(split, task))

    def task_dirs(self) -> list[Path]:
        """Every datasets/{split}/{task} folder."""
        return sorted(p for p in self.datasets.glob("*/*") if p.is_dir())

    def shards(self, split: str | None = None) -> list[Path]:
        """Every shard tar (of one split, or of all)."""
        return sorted(self.datasets.glob(f"{split or '*'}/*/*.tar"))

    def shard_manifests(self, split: str | None = None) -> list[Path]:
        """Every shard manifest parquet (of one split, or of all)."""
        return dataset_manifests(self.datasets, split or "*")

    def staging(self, split: str, task: str) -> tuple[Path, Path]:
        """(new, old): regen's staged split and the live one it replaces."""
        root = self.root / STAGING
        return root / f"{split}-{task}.new", root / f"{split}-{task}.old"

    def recover(self) -> list[str]:
        """Finish or undo a split swap that regen left half done; returns what was done,
        for the log."""
        done = []
        for old in sorted((self.root / STAGING).glob("*.old")):
            split, task = old.name.removesuffix(".old").split("-", 1)
            live = self.task_dir(split, task)
            if not live.exists():
                old.rename(live)  # died between the two renames: the old split comes back
                done.append(f"restored {split}/{task}")
            else:
                shutil.rmtree(old)  # died after the swap: the new split is complete
                done.append(f"removed the replaced {split}/{task}")
        for new in sorted((self.root / STAGING).glob("*.new")):
            shutil.rmtree(new)  # died while staging: the live split was never touched
            done.append(f"dropped a half-built {new.name}")
        return done


def regenerated_tasks(run: dict[str, Any]) -> set[tuple[str, str]]:
    """(split, task) of every split regen has replaced, from run.json's record."""
    return {(r["split"], r["task"]) for r in run.get("regenerations", [])}


def manifest_dir(task_dir: Path) -> Path:
    return task_dir / MANIFESTS


def manifest_of(tar: Path) -> Path:
    """The manifest parquet of a shard tar."""
    return tar.parent / MANIFESTS / f"{tar.stem}.parquet"


def tar_of(manifest: Path) -> Path:
    """The shard tar a manifest parquet describes."""
    return manifest.parent.parent / f"{manifest.stem}.tar"


def stats_path(task_dir: Path) -> Path:
    return task_dir / MANIFESTS / STATS_JSON


def regen_rejects(task_dir: Path) -> Path:
    """The rejects regen recorded for a task's split: beside its manifests, so they are
    swapped in with the shards they explain (a subfolder: no manifest glob lists it)."""
    return task_dir / MANIFESTS / "regen" / "rejects.parquet"


def task_manifests(task_dir: Path) -> list[Path]:
    """A task folder's shard manifests, in shard order."""
    return sorted(manifest_dir(task_dir).glob("*.parquet"))


def dataset_manifests(datasets: Path, split: str = "*") -> list[Path]:
    """Every shard manifest under `datasets/` (of one split, or of all), task by task."""
    return sorted(datasets.glob(f"{split}/*/{MANIFESTS}/*.parquet"))
