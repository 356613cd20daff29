"""ShardSink: samples -> WebDataset shards sized for training, a parquet manifest each,
stats per task.

A task's shards fill in order: `{task}-{split}-NNNNNN.tar`, NNNNNN counting from 0,
each holding `shards.max_samples` samples or `shards.max_bytes` bytes, whichever comes
first, so every shard but a task's last is full. The last one stays open from block to
block: the next block appends to it in place (the tar's bytes equal those written in one
go). Why carried rather than compacted at the end (measured in README, Output): a
compaction writes every byte twice and the output is only training-ready after it,
while the open shard costs nothing more than the per-block shards did.

Crash safety: a new tar is written under a temporary name and renamed; an append
writes past the committed end. The manifest (rewritten with all the shard's rows)
comes after the tar and the block's ledger after both, so what a block committed is
exactly the manifest rows of ledgered blocks. A sink that starts on an output cuts each
task back to those rows (`resume`): the tar to where its first uncommitted member
starts, the manifests to committed rows, shards of uncommitted samples only removed;
the blocks after that are committed again, in order, which gives the same bytes.

Manifests and stats sit in the task's `__manifests__/` folder: a data folder holds
tars alone, which every WebDataset reader takes as is (Hugging Face datasets skips
folders named `__*`, Ray Data those named `_*`).

Hashing the samples and making each tar durable (fsync, rename, then its manifest) run
in two background threads while the next tar is written: both release the GIL, so a
block's shards take about as long as writing the tars alone (benchmarks/shard_write.py).
`write_block` returns when every shard of the block is complete.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datapipe.hashing import canonical_json
from datapipe.io.atomic import atomic_path, commit, write_bytes
from datapipe.io.layout import (
    OutputLayout,
    manifest_dir,
    manifest_of,
    stats_path,
    tar_of,
    task_manifests,
)
from datapipe.io.tar import append_tar, members_end, sample_size, tar_size, write_tar_aside
from datapipe.recipe import ShardConfig
from datapipe.records import Sample

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
    files["json"] = canonical_json(_numeric_scores(sample.meta))
    return files


def _numeric_scores(meta: dict[str, Any]) -> dict[str, Any]:
    """The sample's metadata with each score that does not apply (None) written as NaN.
    Hugging Face's webdataset loader types every field from the first five samples: a
    score null in those and a number later (`ocr.glyph_height` on a poster with three
    flat capitals) failed the whole load. NaN keeps every score a number; Python's json,
    pandas, Hugging Face and Ray read it."""
    scores = meta.get("scores")
    if not scores:
        return meta

    def numeric(values: dict[str, Any]) -> dict[str, Any]:
        return {k: math.nan if v is None else v for k, v in values.items()}

    return {
        **meta,
        "scores": {
            **scores,
            "target": numeric(scores.get("target") or {}),
            "sources": [numeric(s) for s in scores.get("sources") or []],
            "pair": numeric(scores.get("pair") or {}),
        },
    }


def sample_digest(files: dict[str, bytes | str]) -> str:
    """sha256 over the members in tar order, so verify can check a sample against its row."""
    h = hashlib.sha256()
    for ext in sorted(k for k in files if k != "__key__"):
        value = files[ext]
        h.update(ext.encode() + b"\0" + (value if isinstance(value, bytes) else value.encode()))
    return h.hexdigest()


def shard_name(task: str, split: str, index: int) -> str:
    return f"{task}-{split}-{index:06d}"


@dataclass
class ShardInfo:
    """A shard a block wrote or appended to, as it stands after the block."""

    task: str
    name: str
    samples: int
    bytes: int


@dataclass
class OpenShard:
    """A task's last shard: where the next sample goes."""

    index: int
    end: int = 0
    """Where its members end (its end-of-archive blocks start); 0 for a shard not yet written."""
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Part:
    shard: OpenShard
    items: list[tuple[Sample, dict]]
    bytes: int = 0


class ShardSink:
    def __init__(self, out: Path, split: str, limits: ShardConfig) -> None:
        self.root = OutputLayout(out).split_dir(split)
        self.split = split
        self.limits = limits
        self.open: dict[str, OpenShard] | None = None
        """Each task's open shard; read from disk (`resume`) at the first block."""

    def task_dir(self, task: str) -> Path:
        return self.root / task

    def resume(self, block: int) -> None:
        """Take up each task where the committed blocks (those before `block`) left it."""
        self.open = {}
        for task_dir in sorted(p for p in self.root.glob("*") if p.is_dir()):
            self.open[task_dir.name] = self._resume_task(task_dir, block)

    def _resume_task(self, task_dir: Path, block: int) -> OpenShard:
        """Cut a task back to the rows of blocks before `block`: later rows come from a
        block that was not ledgered (or is committed again) and will be written again."""
        for tar in sorted(task_dir.glob("*.tar"), reverse=True):
            manifest = manifest_of(tar)
            rows = pq.read_table(manifest).to_pylist() if manifest.is_file() else []
            kept = [r for r in rows if r["block"] < block]
            index = int(tar.stem.rsplit("-", 1)[1])
            if not kept:
                tar.unlink()
                manifest.unlink(missing_ok=True)
                continue
            end = members_end(tar, {r["key"] for r in kept})
            shard = OpenShard(index=index, end=end, rows=kept)
            if kept != rows or tar.stat().st_size != tar_size(end):
                append_tar(tar, end, [])
                self._write_manifest(task_dir, tar.stem, kept)
            return shard
        return OpenShard(index=0)

    def write_block(self, block: int, samples: Iterable[Sample]) -> list[ShardInfo]:
        """Append a block's samples to their tasks' shards; returns every shard touched."""
        if self.open is None:
            self.resume(block)
        assert self.open is not None
        by_task: dict[str, list[Sample]] = {}
        for sample in samples:
            by_task.setdefault(sample.task, []).append(sample)
        with ThreadPoolExecutor(1) as hasher, ThreadPoolExecutor(1) as finisher:
            finished = []
            for task in sorted(by_task):
                shard = self.open.setdefault(task, OpenShard(index=0))
                for part in self._parts(shard, by_task[task]):
                    digests = hasher.submit(lambda p=part: [sample_digest(f) for _, f in p.items])
                    tar = (
                        self.task_dir(task)
                        / f"{shard_name(task, self.split, part.shard.index)}.tar"
                    )
                    members = [files for _, files in part.items]
                    if part.shard.end:
                        tmp = None
                        append_tar(tar, part.shard.end, members)
                    else:
                        tmp = write_tar_aside(tar, members)
                    finished.append(
                        finisher.submit(self._finish_shard, task, block, part, tar, tmp, digests)
                    )
                    part.shard.end += part.bytes
                    self.open[task] = part.shard
            return [future.result() for future in finished]

    def _parts(self, shard: OpenShard, samples: list[Sample]) -> list[_Part]:
        """The block's samples split over the open shard and as many new ones as the
        limits need."""
        parts = [_Part(shard, [])]
        count, size = len(shard.rows), shard.end
        for sample in samples:
            files = sample_files(sample)
            nbytes = sample_size(files)
            if count and (
                count >= self.limits.max_samples or size + nbytes > self.limits.max_bytes
            ):
                parts.append(_Part(OpenShard(index=parts[-1].shard.index + 1), []))
                count, size = 0, 0
            parts[-1].items.append((sample, files))
            parts[-1].bytes += nbytes
            count += 1
            size += nbytes
        return [p for p in parts if p.items]

    def _finish_shard(
        self,
        task: str,
        block: int,
        part: _Part,
        tar: Path,
        tmp: Path | None,
        digests: Future[list[str]],
    ) -> ShardInfo:
        """Make a written tar durable, then write its manifest (which marks the samples in)."""
        if tmp is None:
            with tar.open("rb") as handle:
                os.fsync(handle.fileno())
        else:
            try:
                commit(tmp, tar)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        for (sample, files), digest in zip(part.items, digests.result(), strict=True):
            lineage = sample.meta["lineage"]
            part.shard.rows.append(
                {
                    "key": sample.key,
                    "task": task,
                    "split": self.split,
                    "language": sample.language,
                    "theme": sample.theme,
                    "block": block,
                    "shard": tar.name,
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
        self._write_manifest(self.task_dir(task), tar.stem, part.shard.rows)
        return ShardInfo(
            task=task, name=tar.stem, samples=len(part.shard.rows), bytes=tar.stat().st_size
        )

    def _write_manifest(self, task_dir: Path, name: str, rows: list[dict[str, Any]]) -> None:
        with atomic_path(manifest_dir(task_dir) / f"{name}.parquet") as manifest:
            pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), manifest)

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
        for manifest in task_manifests(folder):
            table = pq.read_table(manifest, columns=["language", "theme", "params_json"])
            tar = tar_of(manifest)
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
        write_bytes(stats_path(folder), json.dumps(stats, indent=2, ensure_ascii=False).encode())
        return stats
