"""ShardSink: samples -> WebDataset shards, a parquet manifest each, stats per task.

Names depend only on the recipe and the block (`{task}-{split}-NNNNNN[-K].tar`), never
on which worker finished first, so any runner writes the same bytes. Each tar is
written under a temporary name and renamed; its manifest is written after it, and a
task's `stats.json` is rebuilt from the manifests last, so a crash leaves either a
complete shard with its manifest or nothing a reader would pick up.

Hashing the samples and making each tar durable (fsync, rename, then its manifest) run
in two background threads while the next tar is written: both release the GIL, so a
block's shards take about as long as writing the tars alone (benchmarks/shard_write.py).
`write_block` returns when every shard of the block is complete.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datapipe.hashing import canonical_json
from datapipe.io.atomic import atomic_path, commit, write_bytes
from datapipe.io.layout import STATS_JSON, OutputLayout
from datapipe.io.tar import write_tar_aside
from datapipe.recipe import ShardConfig
from datapipe.records import Sample

TAR_OVERHEAD = 1024 * 6
"""Bytes a tar adds per sample (headers and padding of about five members), for the size limit."""

MANIFEST_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("task", pa.string()),
        ("split", pa.string()),
        ("language", pa.string()),
        ("theme", pa.string()),
        ("block", pa.int64()),
        ("shard", pa.string()),
        ("members", pa.list_(pa.string())),
        ("bytes", pa.int64()),
        ("sha256", pa.string()),
        ("group_id", pa.string()),
        ("target_key", pa.string()),
        ("source_keys", pa.list_(pa.string())),
        ("entity_id", pa.string()),
        ("style_id", pa.string()),
        ("instruction", pa.string()),
        ("params_json", pa.string()),
    ]
)


def sample_files(sample: Sample) -> dict[str, bytes | str]:
    """The tar members of one sample (extension -> bytes), `__key__` included."""
    files: dict[str, bytes | str] = {"__key__": sample.key}
    if len(sample.sources) == 1:
        files["source.png"] = sample.sources[0]
    else:
        for i, source in enumerate(sample.sources):
            files[f"source_{i}.png"] = source
    files["target.png"] = sample.target
    if sample.mask is not None:
        files["mask.png"] = sample.mask
    files["txt"] = sample.instruction.encode()
    files["json"] = canonical_json(sample.meta)
    return files


def sample_digest(files: dict[str, bytes | str]) -> str:
    """sha256 over the members in tar order, so verify can check a sample against its row."""
    h = hashlib.sha256()
    for ext in sorted(k for k in files if k != "__key__"):
        value = files[ext]
        h.update(ext.encode() + b"\0" + (value if isinstance(value, bytes) else value.encode()))
    return h.hexdigest()


@dataclass
class ShardInfo:
    task: str
    name: str
    samples: int
    bytes: int


def chunk(samples: list[Sample], limits: ShardConfig) -> list[list[tuple[Sample, dict]]]:
    """Split a block's samples into shards by the recipe's count and byte limits."""
    shards: list[list[tuple[Sample, dict]]] = [[]]
    size = 0
    for sample in samples:
        files = sample_files(sample)
        nbytes = TAR_OVERHEAD + sum(len(v) for k, v in files.items() if k != "__key__")
        current = shards[-1]
        if current and (len(current) >= limits.max_samples or size + nbytes > limits.max_bytes):
            shards.append([])
            size = 0
        shards[-1].append((sample, files))
        size += nbytes
    return [s for s in shards if s]


class ShardSink:
    def __init__(self, out: Path, split: str, limits: ShardConfig) -> None:
        self.root = OutputLayout(out).split_dir(split)
        self.split = split
        self.limits = limits

    def task_dir(self, task: str) -> Path:
        return self.root / task

    def write_block(self, block: int, samples: Iterable[Sample]) -> list[ShardInfo]:
        by_task: dict[str, list[Sample]] = {}
        for sample in samples:
            by_task.setdefault(sample.task, []).append(sample)
        with ThreadPoolExecutor(1) as hasher, ThreadPoolExecutor(1) as finisher:
            finished = []
            for task in sorted(by_task):
                parts = chunk(by_task[task], self.limits)
                for part_index, part in enumerate(parts):
                    suffix = f"-{part_index}" if part_index else ""
                    name = f"{task}-{self.split}-{block:06d}{suffix}"
                    digests = hasher.submit(lambda p=part: [sample_digest(f) for _, f in p])
                    tar = self.task_dir(task) / f"{name}.tar"
                    tmp = write_tar_aside(tar, [files for _, files in part])
                    finished.append(
                        finisher.submit(self._finish_shard, task, name, block, part, tmp, digests)
                    )
            return [future.result() for future in finished]

    def _finish_shard(
        self,
        task: str,
        name: str,
        block: int,
        part: list[tuple[Sample, dict]],
        tmp: Path,
        digests: Future[list[str]],
    ) -> ShardInfo:
        """Commit a written tar, then write its manifest (which marks the shard done)."""
        folder = self.task_dir(task)
        tar = folder / f"{name}.tar"
        try:
            commit(tmp, tar)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        rows = []
        for (sample, files), digest in zip(part, digests.result(), strict=True):
            lineage = sample.meta["lineage"]
            rows.append(
                {
                    "key": sample.key,
                    "task": task,
                    "split": self.split,
                    "language": sample.language,
                    "theme": sample.theme,
                    "block": block,
                    "shard": f"{name}.tar",
                    "members": sorted(f"{sample.key}.{ext}" for ext in files if ext != "__key__"),
                    "bytes": sum(len(v) for k, v in files.items() if k != "__key__"),
                    "sha256": digest,
                    "group_id": lineage["group_id"],
                    "target_key": lineage["target"],
                    "source_keys": lineage["sources"],
                    "entity_id": sample.meta["entity"]["id"],
                    "style_id": sample.meta["style"]["id"],
                    "instruction": sample.instruction,
                    "params_json": json.dumps(
                        sample.meta["params"], sort_keys=True, ensure_ascii=False
                    ),
                }
            )
        with atomic_path(folder / f"{name}.parquet") as manifest:
            pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), manifest)
        return ShardInfo(task=task, name=name, samples=len(rows), bytes=tar.stat().st_size)

    def write_stats(
        self, task: str, recipe_hash: str, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Rebuild `stats.json` from the task's committed manifests (plus `extra` fields)."""
        folder = self.task_dir(task)
        shards = []
        languages: Counter[str] = Counter()
        themes: Counter[str] = Counter()
        mask_kinds: Counter[str] = Counter()
        total = 0
        for manifest in sorted(folder.glob(f"{task}-{self.split}-*.parquet")):
            table = pq.read_table(manifest, columns=["language", "theme", "params_json"])
            tar = manifest.with_suffix(".tar")
            shards.append(
                {"name": tar.name, "samples": table.num_rows, "bytes": tar.stat().st_size}
            )
            languages.update(table.column("language").to_pylist())
            themes.update(table.column("theme").to_pylist())
            if task == "fill":
                kinds = (
                    json.loads(p)["mask_kind"] for p in table.column("params_json").to_pylist()
                )
                mask_kinds.update(kinds)
            total += table.num_rows
        stats: dict[str, Any] = {
            "task": task,
            "split": self.split,
            "recipe_hash": recipe_hash,
            "samples": total,
            "shards": shards,
            "by_language": dict(sorted(languages.items())),
            "by_theme": dict(sorted(themes.items())),
        }
        if task == "fill":
            stats["by_mask_kind"] = dict(sorted(mask_kinds.items()))
        stats.update(extra or {})
        write_bytes(folder / STATS_JSON, json.dumps(stats, indent=2, ensure_ascii=False).encode())
        return stats
