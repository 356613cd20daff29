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
from datapipe.bench import BenchState
from datapipe.coverage import coverage
from datapipe.errors import DatapipeError, OutputError
from datapipe.io.atomic import TMP_SUFFIX, atomic_path, write_bytes
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.card import write_card
from datapipe.io.layout import OutputLayout, manifest_of, regenerated_tasks
from datapipe.io.rejects import reject_parts
from datapipe.io.shard_sink import ShardSink
from datapipe.io.truth_store import Graded, TruthStore
from datapipe.libraries import LoadedRecipe
from datapipe.plan import recipe_coverage_floor
from datapipe.planner import Phase, Planner
from datapipe.recipe import Recipe
from datapipe.records import Group
from datapipe.runner.budget import BudgetExhaustedError
from datapipe.runner.cost import add_commit_usage
from datapipe.runner.driver import run_stage
from datapipe.runner.summary import RunCounts, RunSummary
from datapipe.stages.near_duplicates import kept_hashes
from datapipe.stages.registry import DatasetStages, build_dataset_stages, near_duplicates

SPLITS = ("train", "bench")
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


def model_records(recipe: Recipe) -> dict[str, Any]:
    """The model files a run scores with, with their digests (CLIP: which weights and
    config; a score means nothing without them)."""
    if not recipe.stages.clip.enabled:
        return {}
    from datapipe.backends.clip_openclip import describe

    return {"clip": describe(recipe.stages.clip)}


def reject_rows(groups: Iterable[Group], faults: dict[str, str]) -> list[dict[str, Any]]:
    """One row per (candidate, failed rule) and per pair a builder could not make.
    `faults` (from the truth store, for inspection only) names the fault a render was
    drawn with, where its renderer knew."""
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
                        "variant": faults.get(candidate.key),
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


@dataclass
class Plan:
    """The blocks of one phase of a run (the planner's train plan, a target round or a
    bench round), sorted by what a rerun has to do with them."""

    todo: dict[int, list[Group]]
    """Blocks to render: groups with ids, not yet composed."""
    stored: list[int]
    """Blocks whose renders are committed to the candidate store but not yet to shards."""
    done: list[int]
    """Blocks with a ledger: finished."""
    blocks: list[int]
    """Every block of the phase, in commit order. Block numbers only: a runner takes each
    block's groups out of `todo` as it renders them, so a phase's rendered images are never
    all held at once."""
    split: str = "train"


def _ids(groups: list[Group]) -> list[str]:
    return [g.group_id for g in groups]


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _intact(out: Path, name: str, recorded: int) -> bool:
    """A file is as a ledger recorded it; shards and manifests (under datasets/) grow
    with the blocks after it, which append to a task's open shard, so those may be larger."""
    size = _size(out / name)
    if size is None or not name.startswith("datasets/"):
        return size == recorded
    return size >= recorded


LOG_FILE = "datapipe.log"
RAY_LOG_FILE = "ray.log"
"""Written by the `datapipe run` command (datapipe.run_log), before the run claims OUT."""


def check_out_dir(out: Path) -> None:
    """Accept a missing or empty folder, or a datapipe output; refuse anything else.

    A run writes and later deletes files in its folder: beside a user's own files, or
    nested inside another run (which `verify` and the loaders would then read as part of
    it), that would mix or lose data. Whether an output is of this recipe is checked next,
    from its run.json."""
    if out.exists() and not out.is_dir():
        raise OutputError(
            f"--out {out} is a file, not a folder", fix="pass a new or empty folder as --out"
        )
    for parent in out.resolve().parents:
        if OutputLayout(parent).run_json.is_file():
            raise OutputError(
                f"--out {out} is inside the datapipe output {parent}: a run nested in another "
                "would be read as part of it",
                fix=f"pass a folder outside {parent} as --out",
            )
    ours = {LOG_FILE, RAY_LOG_FILE}
    if (
        out.is_dir()
        and not OutputLayout(out).run_json.is_file()
        and any(p.name not in ours for p in out.iterdir())
    ):
        raise OutputError(
            f"--out {out} is not empty and holds no datapipe run (no run.json): datapipe would "
            "write beside your files",
            fix="pass a new or empty folder as --out, or the folder of an earlier run to resume it",
        )


class RunOutput:
    def __init__(
        self,
        out: Path,
        loaded: LoadedRecipe,
        runner: str,
        only: set[str] | None = None,
        shard_root: Path | None = None,
        planner: Planner | None = None,
    ) -> None:
        """`planner` is the run's (told each block as it is committed); `only` and
        `shard_root` are for regen: build some tasks, into a staging folder."""
        self.out = out
        self.loaded = loaded
        self.runner = runner
        self.only = only
        self.store = CandidateStore(out)
        self.graded = TruthStore(out)
        self.sinks = {
            split: ShardSink(shard_root or out, split, loaded.recipe.shards) for split in SPLITS
        }
        self.layout = OutputLayout(out)
        self.started = datetime.now(timezone.utc)
        self.repaired: dict[int, list[str]] = {}
        """Blocks found damaged on open, with what was wrong: redone and reported."""
        self.seen = near_duplicates(loaded)
        """Kept hashes of both splits, in commit order (near-duplicate checks)."""
        self.planner = planner or Planner(loaded)
        self._stages: dict[str, DatasetStages] = {}
        self._regenerated: set[tuple[str, str]] = set()
        self._recommit: set[str] = set()
        """Splits with a block to redo: every later block of the split is committed again."""
        self.stop: BudgetExhaustedError | None = None
        """Set when a budget cap stopped the run (finalize reports and raises it)."""

    @property
    def bench(self) -> BenchState | None:
        """The bench quotas (the planner's), which the bench stage fills."""
        return self.planner.bench

    def dataset_stages(self, split: str) -> DatasetStages:
        """The split's filter, near-duplicate, task (and bench) stages, set up once."""
        if split not in self._stages:
            stages = build_dataset_stages(
                self.loaded, self.out, split, self.seen, self.bench, self.only
            )
            for stage in stages.all:
                stage.setup()
            self._stages[split] = stages
        return self._stages[split]

    def teardown(self) -> None:
        for stages in self._stages.values():
            for stage in stages.all:
                stage.teardown()

    def open(self, limit: int | None) -> None:
        """Claim the directory for this recipe and clear leftovers."""
        check_out_dir(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._check_recipe()
        self.layout.recover()
        for leftover in self.out.rglob(f"*{TMP_SUFFIX}"):
            if leftover.is_file():
                leftover.unlink()
        self._regenerated = regenerated_tasks(self._previous_run())
        self._write_run_json("running", limit, None)

    def sort(self, phase: Phase) -> Plan:
        """A phase's blocks by what is left to do with them. The groups move out of the
        phase into the plan, whose runner drops each block's as it commits it: neither
        the phase nor the planner holds a committed block's renders."""
        split = phase.split
        plan = Plan(todo={}, stored=[], done=[], blocks=sorted(phase.blocks), split=split)
        for block in plan.blocks:
            groups = phase.blocks.pop(block)
            state = self._block_state(block, _ids(groups))
            if state == "done" and split in self._recommit:
                state = self._recommit_state(block, _ids(groups))
            if state == "stored" and self.load_stored(block) is None:
                state = "todo"  # checked now: blocks are committed in order, later
            if state != "done":
                self._recommit.add(split)
            if state == "done":
                plan.done.append(block)
            elif state == "stored":
                plan.stored.append(block)
            else:
                plan.todo[block] = groups
        return plan

    def _block_state(self, block: int, ids: list[str]) -> str:
        """done (ledger and every file it lists intact), stored (renders intact), or todo.

        Sizes are compared with the ledger's record, which catches truncated and missing
        files at the cost of a stat each; a block that fails is redone from whatever is
        still intact, and its stale ledger and damaged renders are removed first.
        """
        ledger = self._ledger(block)
        if ledger is not None and ledger.get("groups") == ids:
            regenerated = [
                f"{self.layout.task_dir(split, task).relative_to(self.out)}/"
                for split, task in self._regenerated
            ]
            files = {
                path: size
                for path, size in ledger.get("files", {}).items()
                if not any(path.startswith(prefix) for prefix in regenerated)
            }
            damaged = [path for path, size in files.items() if not _intact(self.out, path, size)]
            if not damaged:
                return "done"
            self.repaired[block] = damaged
            self.layout.ledger(block).unlink()
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

    def _recommit_state(self, block: int, ids: list[str]) -> str:
        """A finished block after one that is redone: its samples follow the redone ones
        in the tasks' shards, so it is committed again (from the store, not rendered)."""
        self.layout.ledger(block).unlink()
        return "stored" if self.store.committed_groups(block) == ids else "todo"

    def _ledger(self, block: int) -> dict[str, Any] | None:
        path = self.layout.ledger(block)
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def _check_recipe(self) -> None:
        """Refuse to mix two recipes' outputs in one directory."""
        run_json = self.layout.run_json
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

    def commit_block(
        self,
        block: int,
        groups: list[Group],
        split: str,
        summary: RunSummary,
        graded: dict[str, Graded] | None = None,
    ) -> None:
        """Store (if not yet stored), filter, build, shard, record rejects, write the ledger.

        A full disk stops the run with a clear error: what was committed stays committed
        (every file is written aside and renamed), and the rerun finishes this block.
        """
        try:
            self._commit_block(block, groups, split, summary, graded)
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
        split: str,
        summary: RunSummary,
        graded: dict[str, Graded] | None,
    ) -> None:
        groups = sorted(groups, key=lambda g: g.index)
        sink = self.sinks[split]
        if not self.store.is_committed(block):
            began = time.perf_counter()
            if graded:  # before the candidate store: its parquet marks the block stored
                self.graded.write(block, graded)
            self.store.commit(block, groups)
            stored = sum(len(g.candidates) for g in groups)
            summary.timing("store").add(time.perf_counter() - began, stored)
        for stage in self.dataset_stages(split).all:
            groups = run_stage(stage, groups, summary)
        planned = self.planner.committed(split, groups)
        began = time.perf_counter()
        samples = [s for g in groups for s in g.samples]
        shards = sink.write_block(block, samples)
        summary.timing("shards").add(time.perf_counter() - began, len(samples))
        with atomic_path(self.layout.block_rejects(block)) as tmp:
            rows = reject_rows(groups, self.graded.faults(block))
            pq.write_table(pa.Table.from_pylist(rows, schema=REJECTS_SCHEMA), tmp)
        counts = RunCounts()
        counts.add_groups(groups)
        files = {
            str(p.relative_to(self.out)): p.stat().st_size
            for p in (
                *self.store.paths(block),
                self.layout.block_rejects(block),
                self.graded.path(block),
            )
            if p.is_file()
        }
        for s in shards:  # recorded where they live once a regen's staging is swapped in
            tar = sink.task_dir(s.task) / f"{s.name}.tar"
            for path in (tar, manifest_of(tar)):
                final = f"datasets/{split}/{path.relative_to(sink.root).as_posix()}"
                files[final] = path.stat().st_size
        ledger: dict[str, Any] = {
            "block": block,
            "split": split,
            "recipe_hash": self.loaded.recipe_hash,
            "groups": [g.group_id for g in groups],
            "candidates": sum(len(g.candidates) for g in groups),
            "shards": [
                {"task": s.task, "name": s.name, "samples": s.samples, "bytes": s.bytes}
                for s in shards
            ],
            "files": files,
            "counts": counts.to_dict(),
            "kept_phashes": kept_hashes(groups),
            **planned,
        }
        write_bytes(
            self.layout.ledger(block), json.dumps(ledger, indent=1, sort_keys=True).encode()
        )
        summary.merge(counts)
        add_commit_usage(summary.api, groups)
        summary.blocks += 1

    def absorb(self, block: int, summary: RunSummary) -> None:
        """A block finished by an earlier run: its counts, kept hashes and quota account
        come from its ledger, in block order like a committed one."""
        ledger = json.loads(self.layout.ledger(block).read_text())
        counts = RunCounts.from_dict(ledger["counts"])
        split = ledger.get("split", "train")
        self.seen.remember(split, ledger.get("kept_phashes", []))
        self.planner.remember(split, ledger)
        summary.merge(counts)
        summary.blocks += 1
        summary.blocks_skipped += 1
        summary.groups_skipped += counts.groups

    def finalize(self, summary: RunSummary, limit: int | None) -> None:
        """Stats per task, the rejects table and run.json: rebuilt from committed files.
        After a budget stop too (what it made is usable as is), then the stop is raised
        with the summary, for the caller to report."""
        stop = self.stop
        history = self._previous_run().get("regenerations", [])
        regenerations = {(r["split"], r["task"]): r for r in history}
        for split, sink in self.sinks.items():
            for task_dir in sorted(p for p in sink.root.glob("*") if p.is_dir()):
                record = regenerations.get((split, task_dir.name))
                if record:  # rebuilt by regen: its stats keep saying how
                    sink.write_stats(task_dir.name, record["recipe_hash"], {"regeneration": record})
                else:
                    sink.write_stats(task_dir.name, self.loaded.recipe_hash)
        for record in history:  # in order: the ledgers' counts predate every regen
            summary.apply_regeneration(record)
        self.write_rejects()
        self._write_run_json("stopped" if stop else "finished", limit, summary, stop)
        write_card(self.out)
        if stop is not None:
            stop.summary = summary
            raise stop

    def write_rejects(self) -> None:
        """rejects.parquet: every block's rejects in block order, a regenerated task's
        replaced by the ones its regen recorded (io.rejects)."""
        parts = [table for _, table in reject_parts(self.out)]
        table = pa.concat_tables(parts) if parts else None
        with atomic_path(self.layout.rejects) as tmp:
            pq.write_table(table if table is not None else REJECTS_SCHEMA.empty_table(), tmp)

    def rebuild(self, block: int, groups: list[Group], split: str, write: bool) -> list[Group]:
        """Regen: filter a stored block again (which renews the near-duplicate index);
        when `write`, build this output's tasks from it and shard them. No ledger is
        touched. Returns the groups written, with their verdicts and pair rejects."""
        stages = self.dataset_stages(split)
        groups = sorted(groups, key=lambda g: g.index)
        for stage in stages.verdict:  # every group, in order (renews the near-duplicate index)
            groups = stage.process_batch(groups)
        if not write:
            return []
        only = self.only or set()
        groups = [g for g in groups if g.task is None or g.task in only]
        for stage in stages.build:
            groups = stage.process_batch(groups)
        self.planner.committed(split, groups)  # the run's targets hold back the same samples
        samples = [s for g in groups for s in g.samples]
        self.sinks[split].write_block(block, samples)
        return groups

    def _previous_run(self) -> dict[str, Any]:
        try:
            return json.loads(self.layout.run_json.read_text())
        except (OSError, ValueError):
            return {}

    def _write_run_json(
        self,
        status: str,
        limit: int | None,
        summary: RunSummary | None,
        stop: BudgetExhaustedError | None = None,
    ) -> None:
        loaded = self.loaded
        regenerations = self._previous_run().get("regenerations", [])
        found = coverage(self.out) if summary else None
        floor = recipe_coverage_floor(found, loaded) if found else None
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
            "models": model_records(loaded.recipe),
            "started": self.started.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")
            if summary
            else None,
            "summary": summary.to_dict() if summary else None,
            "repaired_blocks": {str(b): why for b, why in sorted(self.repaired.items())},
            "regenerations": regenerations,
            "coverage": found.to_dict() if found else None,
            "coverage_floor": floor.to_dict() if floor else None,
            "budget": {
                "caps": self.loaded.recipe.execution.budget.model_dump(),
                "stop": stop.to_dict() if stop else None,
            },
        }
        for name, report in self.planner.report().items():
            record[name] = report if summary else None
        write_bytes(self.layout.run_json, json.dumps(record, indent=2, ensure_ascii=False).encode())


class OrderedCommits:
    """Commits a phase's blocks strictly in block order, whatever order renders come
    back in: near-duplicate and quota verdicts depend on what was committed before, so
    the order must be the same in every runner and every rerun. Finished blocks are
    read from their ledgers, stored ones rebuilt from the store, rendered ones buffered
    until every block before them is in."""

    def __init__(
        self, output: RunOutput, plan: Plan, summary: RunSummary, progress: Progress | None
    ) -> None:
        self.output = output
        self.plan = plan
        self.summary = summary
        self.progress = progress
        self.order = plan.blocks
        self.position = 0
        self.rendered: dict[int, tuple[list[Group], dict[str, Graded]]] = {}

    def ready(self, block: int, groups: list[Group], graded: dict[str, Graded]) -> None:
        """A rendered block (with its renderer's truth, for grading): commit it and
        everything after it that can go."""
        self.rendered[block] = (groups, graded)
        self.drain()

    def drain(self) -> None:
        output, summary, plan = self.output, self.summary, self.plan
        while self.position < len(self.order):
            block = self.order[self.position]
            if block in plan.done:
                output.absorb(block, summary)
            elif block in plan.stored:
                stored = output.load_stored(block)
                if stored is None:
                    raise OutputError(
                        f"candidate store block {block} was damaged during the run",
                        fix="rerun the same command: the block is rendered again",
                    )
                output.commit_block(block, stored, plan.split, summary)
                summary.blocks_from_store += 1
            elif block in self.rendered:
                groups, graded = self.rendered.pop(block)
                output.commit_block(block, groups, plan.split, summary, graded)
            else:
                return
            self.position += 1
            if self.progress and block not in plan.done:
                self.progress(summary, output.planner.planned_groups)

    def finish(self) -> None:
        self.drain()
        if self.position < len(self.order):
            missing = self.order[self.position : self.position + 5]
            raise DatapipeError(
                f"blocks {missing} never came back: groups were lost in flight",
                fix="rerun the same command: committed blocks are kept and the rest redone",
            )


def drive(
    output: RunOutput,
    limit: int | None,
    summary: RunSummary,
    progress: Progress | None,
    render: Callable[[Plan, OrderedCommits], None],
) -> None:
    """What both runners do between opening an output and finalizing it: ask the planner
    for each phase in turn, commit its finished and stored blocks from disk and the rest
    through the runner's `render` (which hands each rendered block to the phase's
    commits), every block of a phase before the next is planned. A budget stop ends it
    after the last committed block."""
    output.open(limit)
    try:
        while (phase := output.planner.next_phase()) is not None:
            plan = output.sort(phase)
            commits = OrderedCommits(output, plan, summary, progress)
            commits.drain()
            if plan.todo:
                render(plan, commits)
            commits.finish()
    except BudgetExhaustedError as stop:  # a runner would not start the next block
        output.stop = stop
