"""An output directory as runs see it: what is done, what to redo, how a block is committed.

The unit of commit is a block of consecutive groups. A block is written in a fixed
order: its candidate store tar and parquet (the renders, kept or not), then its shards
(tar, then manifest), then its rejects, then its ledger `blocks/block-NNNNNN.json`.
The ledger is the commit mark: a rerun skips ledgered blocks, rebuilds blocks whose
renders are in the store without rendering them again, and redoes the rest. Every
name depends only on the recipe and the block, so a redone block overwrites its own
partial files with the same bytes and never writes a key twice.
"""

from __future__ import annotations

import errno
import json
import platform
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import datapipe
from datapipe.errors import OutputError
from datapipe.io.atomic import TMP_SUFFIX, atomic_path, write_bytes
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.shard_sink import ShardSink
from datapipe.plan import plan_groups
from datapipe.recipe import LoadedRecipe
from datapipe.records import Group
from datapipe.regen import recover, regenerated_tasks
from datapipe.runner.summary import RunCounts, RunSummary
from datapipe.stages.base import Stage

SPLIT = "train"
DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
VERSIONED_PACKAGES = ("pillow", "numpy", "pyarrow", "webdataset", "rapidocr", "onnxruntime", "ray")

REJECTS_SCHEMA = pa.schema(
    [
        ("candidate_key", pa.string()),
        ("group_id", pa.string()),
        ("block", pa.int64()),
        ("stage", pa.string()),
        ("task", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("variant", pa.string()),
        ("scores_json", pa.string()),
    ]
)


Progress = Callable[[RunSummary, int], None]
"""Called after each committed block with the running summary and the total number of groups."""


def versions() -> dict[str, str]:
    found = {"datapipe": datapipe.__version__, "python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def reject_rows(groups: Iterable[Group]) -> list[dict[str, Any]]:
    """One row per (candidate, failed rule) and per pair a builder could not make."""
    rows = []
    for group in groups:
        for candidate in group.candidates:
            if candidate.verdict is None or candidate.verdict.keep:
                continue
            scores = json.dumps(candidate.scores, sort_keys=True)
            for reason in candidate.verdict.reasons:
                rows.append(
                    {
                        "candidate_key": candidate.key,
                        "group_id": group.group_id,
                        "block": group.block,
                        "stage": "filter",
                        "task": None,
                        "reason": reason,
                        "detail": candidate.verdict.details.get(reason, ""),
                        "variant": candidate.spec.variant,
                        "scores_json": scores,
                    }
                )
        for pair in group.pair_rejects:
            rows.append(
                {
                    "candidate_key": pair.candidate_key,
                    "group_id": group.group_id,
                    "block": group.block,
                    "stage": "tasks",
                    "task": pair.task,
                    "reason": pair.reason,
                    "detail": pair.detail,
                    "variant": None,
                    "scores_json": json.dumps(pair.scores, sort_keys=True),
                }
            )
    return rows


def run_stage(stage: Stage, groups: list[Group], summary: RunSummary) -> list[Group]:
    """Drive one stage over groups in its batch size, timing it into the summary."""
    timing = summary.timing(stage.name)
    out: list[Group] = []
    for start in range(0, len(groups), stage.batch_size):
        batch = groups[start : start + stage.batch_size]
        began = time.perf_counter()
        out.extend(stage.process_batch(batch))
        timing.seconds += time.perf_counter() - began
        timing.items += stage.items(batch)
        timing.batches += 1
    return out


@dataclass
class Plan:
    """The blocks of a run, sorted by what a rerun has to do with them."""

    todo: dict[int, list[Group]]
    """Blocks to render: groups with ids, not yet composed."""
    stored: list[int]
    """Blocks whose renders are committed to the candidate store but not yet to shards."""
    done: list[int]
    """Blocks with a ledger: finished."""
    total_groups: int
    blocks: dict[int, list[Group]]
    """Every block's groups as planned (ids only), to render again a block found damaged."""


def _ids(groups: list[Group]) -> list[str]:
    return [g.group_id for g in groups]


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


class RunOutput:
    def __init__(self, out: Path, loaded: LoadedRecipe, runner: str) -> None:
        self.out = out
        self.loaded = loaded
        self.runner = runner
        self.store = CandidateStore(out)
        self.sink = ShardSink(out, SPLIT, loaded.recipe.shards)
        self.blocks_dir = out / "blocks"
        self.started = datetime.now(timezone.utc)
        self.repaired: dict[int, list[str]] = {}
        """Blocks found damaged on open, with what was wrong: redone and reported."""

    def ledger_path(self, block: int) -> Path:
        return self.blocks_dir / f"block-{block:06d}.json"

    def rejects_path(self, block: int) -> Path:
        return self.blocks_dir / f"block-{block:06d}.rejects.parquet"

    def open(self, limit: int | None) -> Plan:
        """Claim the directory for this recipe, clear leftovers, and sort the blocks."""
        self.out.mkdir(parents=True, exist_ok=True)
        self._check_recipe()
        recover(self.out)
        for leftover in self.out.rglob(f"*{TMP_SUFFIX}"):
            if leftover.is_file():
                leftover.unlink()
        self._write_run_json("running", limit, None)
        blocks: dict[int, list[Group]] = {}
        slots = plan_groups(self.loaded, limit)
        for slot in slots:
            blocks.setdefault(slot.block, []).append(slot.to_group())
        regenerated = {t for split, t in regenerated_tasks(self._previous_run()) if split == SPLIT}
        plan = Plan(todo={}, stored=[], done=[], total_groups=len(slots), blocks=blocks)
        for block, groups in blocks.items():
            state = self._block_state(block, _ids(groups), regenerated)
            if state == "done":
                plan.done.append(block)
            elif state == "stored":
                plan.stored.append(block)
            else:
                plan.todo[block] = groups
        return plan

    def _block_state(self, block: int, ids: list[str], regenerated: set[str]) -> str:
        """done (ledger and every file it lists intact), stored (renders intact), or todo.

        Sizes are compared with the ledger's record, which catches truncated and missing
        files at the cost of a stat each; a block that fails is redone from whatever is
        still intact, and its stale ledger and damaged renders are removed first.
        """
        ledger = self._ledger(block)
        if ledger is not None and ledger.get("groups") == ids:
            files = {
                path: size
                for path, size in ledger.get("files", {}).items()
                if not any(path.startswith(f"datasets/{SPLIT}/{t}/") for t in regenerated)
            }
            damaged = [path for path, size in files.items() if _size(self.out / path) != size]
            if not damaged:
                return "done"
            self.repaired[block] = damaged
            self.ledger_path(block).unlink()
        store_files = [self.store.paths(block)[0], self.store.paths(block)[1]]
        recorded = (ledger or {}).get("files", {})
        store_intact = all(
            _size(p) == recorded.get(str(p.relative_to(self.out)), _size(p)) for p in store_files
        )
        if store_intact and self.store.committed_groups(block) == ids:
            return "stored"
        for path in store_files:
            path.unlink(missing_ok=True)
        return "todo"

    def _ledger(self, block: int) -> dict[str, Any] | None:
        path = self.ledger_path(block)
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def _check_recipe(self) -> None:
        """Refuse to mix two recipes' outputs in one directory."""
        run_json = self.out / "run.json"
        if not run_json.is_file():
            return
        try:
            previous = json.loads(run_json.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise OutputError(
                f"{run_json}: unreadable ({exc})", fix="remove the directory or pick another --out"
            ) from None
        if previous.get("generation_hash") != self.loaded.generation_hash:
            old = str(previous.get("generation_hash"))[:12]
            raise OutputError(
                f"{self.out} holds a run of another recipe (generation hash {old}, "
                f"this recipe {self.loaded.generation_hash[:12]})",
                fix="choose a new --out, or delete the old output",
            )
        if previous.get("recipe_hash") != self.loaded.recipe_hash:
            raise OutputError(
                f"{self.out} was built with other thresholds, tasks or shard limits "
                "(same renders, different recipe hash): finishing it would mix two versions",
                fix="finish it with the recipe it was started with, or use a new --out",
            )

    def load_stored(self, block: int) -> list[Group] | None:
        """The block's stored renders, or None when the store's files are damaged (the
        block is then rendered again; the damaged files are removed)."""
        try:
            return self.store.load(block)
        except (OSError, EOFError, tarfile.TarError, ValueError, KeyError) as exc:
            self.repaired[block] = [f"candidate store unreadable: {type(exc).__name__}"]
            for path in self.store.paths(block):
                path.unlink(missing_ok=True)
            return None

    def commit_stored(
        self,
        plan: Plan,
        dataset_stages: list[Stage],
        summary: RunSummary,
        progress: Progress | None,
    ) -> None:
        """Finish the blocks whose renders are stored, without rendering; a block whose
        stored renders turn out damaged moves to `plan.todo` to be rendered again."""
        for block in plan.stored:
            stored = self.load_stored(block)
            if stored is None:
                plan.todo[block] = plan.blocks[block]
                continue
            self.commit_block(block, stored, dataset_stages, summary)
            summary.blocks_from_store += 1
            if progress:
                progress(summary, plan.total_groups)

    def commit_block(
        self,
        block: int,
        groups: list[Group],
        dataset_stages: list[Stage],
        summary: RunSummary,
    ) -> None:
        """Store (if not yet stored), filter, build, shard, record rejects, write the ledger.

        A full disk stops the run with a clear error: what was committed stays committed
        (every file is written aside and renamed), and the rerun finishes this block.
        """
        try:
            self._commit_block(block, groups, dataset_stages, summary)
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            raise OutputError(
                f"no space to write block {block} under {self.out} ({exc.strerror}: "
                f"{exc.filename or 'a shard'}); blocks already committed are intact",
                fix="free space or raise the quota, then rerun the same command",
            ) from None

    def _commit_block(
        self,
        block: int,
        groups: list[Group],
        dataset_stages: list[Stage],
        summary: RunSummary,
    ) -> None:
        groups = sorted(groups, key=lambda g: g.index)
        if not self.store.is_committed(block):
            began = time.perf_counter()
            self.store.commit(block, groups)
            timing = summary.timing("store")
            timing.seconds += time.perf_counter() - began
            timing.items += sum(len(g.candidates) for g in groups)
            timing.batches += 1
        for stage in dataset_stages:
            groups = run_stage(stage, groups, summary)
        began = time.perf_counter()
        shards = self.sink.write_block(block, (s for g in groups for s in g.samples))
        timing = summary.timing("shards")
        timing.seconds += time.perf_counter() - began
        timing.items += sum(info.samples for info in shards)
        timing.batches += 1
        with atomic_path(self.rejects_path(block)) as tmp:
            pq.write_table(pa.Table.from_pylist(reject_rows(groups), schema=REJECTS_SCHEMA), tmp)
        counts = RunCounts()
        counts.add_groups(groups)
        files = [*self.store.paths(block), self.rejects_path(block)]
        for s in shards:
            folder = self.sink.task_dir(s.task)
            files += [folder / f"{s.name}.tar", folder / f"{s.name}.parquet"]
        ledger = {
            "block": block,
            "recipe_hash": self.loaded.recipe_hash,
            "groups": [g.group_id for g in groups],
            "candidates": sum(len(g.candidates) for g in groups),
            "shards": [
                {"task": s.task, "name": s.name, "samples": s.samples, "bytes": s.bytes}
                for s in shards
            ],
            "files": {str(p.relative_to(self.out)): p.stat().st_size for p in files},
            "counts": counts.to_dict(),
        }
        write_bytes(self.ledger_path(block), json.dumps(ledger, indent=1, sort_keys=True).encode())
        summary.merge(counts)
        summary.blocks += 1

    def add_done(self, blocks: list[int], summary: RunSummary) -> None:
        """Count finished blocks from their ledgers."""
        for block in blocks:
            ledger = json.loads(self.ledger_path(block).read_text())
            counts = RunCounts.from_dict(ledger["counts"])
            summary.merge(counts)
            summary.blocks += 1
            summary.blocks_skipped += 1
            summary.groups_skipped += counts.groups

    def finalize(self, summary: RunSummary, limit: int | None) -> None:
        """Stats per task, the rejects table and run.json: rebuilt from committed files."""
        regenerations = {
            r["task"]: r
            for r in self._previous_run().get("regenerations", [])
            if r["split"] == SPLIT
        }
        for task_dir in sorted(p for p in self.sink.root.glob("*") if p.is_dir()):
            record = regenerations.get(task_dir.name)
            if record:  # rebuilt by regen: its stats keep saying how
                self.sink.write_stats(
                    task_dir.name, record["recipe_hash"], {"regeneration": record}
                )
            else:
                self.sink.write_stats(task_dir.name, self.loaded.recipe_hash)
        parts = sorted(self.blocks_dir.glob("block-*.rejects.parquet"))
        table = pa.concat_tables([pq.read_table(p) for p in parts]) if parts else None
        with atomic_path(self.out / "rejects.parquet") as tmp:
            pq.write_table(table if table is not None else REJECTS_SCHEMA.empty_table(), tmp)
        self._write_run_json("finished", limit, summary)

    def _previous_run(self) -> dict[str, Any]:
        try:
            return json.loads((self.out / "run.json").read_text())
        except (OSError, ValueError):
            return {}

    def _write_run_json(self, status: str, limit: int | None, summary: RunSummary | None) -> None:
        loaded = self.loaded
        regenerations = self._previous_run().get("regenerations", [])
        record = {
            "status": status,
            "recipe_name": loaded.recipe.name,
            "recipe_path": str(loaded.path),
            "recipe_hash": loaded.recipe_hash,
            "generation_hash": loaded.generation_hash,
            "library_digest": loaded.library.digest,
            "recipe": loaded.recipe.model_dump(mode="json"),
            "limit": limit,
            "runner": self.runner,
            "versions": versions(),
            "started": self.started.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")
            if summary
            else None,
            "summary": summary.to_dict() if summary else None,
            "repaired_blocks": {str(b): why for b, why in sorted(self.repaired.items())},
            "regenerations": regenerations,
        }
        write_bytes(
            self.out / "run.json", json.dumps(record, indent=2, ensure_ascii=False).encode()
        )
