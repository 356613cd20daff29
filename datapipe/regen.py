"""`datapipe regen`: rebuild one task's split from the candidate store, without rendering.

After a threshold or task setting changes, the renders and their scores are still in
the candidate store: the filter and the one task's builder run again over every
committed block, and the task's shards are written to a staging folder and swapped in
by two renames. A crash leaves the old split (restored on the next start) or the new
one complete, never a mix; other tasks and splits are not touched. run.json and the
task's stats.json record the regeneration.

What regen removed is recorded as the run's own rejects are: the task's pairs not made
and the renders its thresholds now reject, each with its reason, in the staged split
(swapped in with the shards they explain). rejects.parquet, run.json's counts, the card
and the report then state what is on disk, and so does a rerun of `datapipe run`, which
applies the records to the counts its ledgers committed before.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datapipe.coverage import coverage
from datapipe.errors import OutputError
from datapipe.io.atomic import atomic_path, write_bytes
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.card import write_card
from datapipe.io.layout import OutputLayout, regen_rejects, task_manifests
from datapipe.io.rejects import reject_parts
from datapipe.libraries import LoadedRecipe
from datapipe.loading import load_recipe
from datapipe.plan import recipe_coverage_floor
from datapipe.records import Group
from datapipe.runner.driver import StageChain
from datapipe.runner.output import REJECTS_SCHEMA, RunOutput, reject_rows
from datapipe.runner.summary import RunCounts, RunSummary
from datapipe.stages.registry import build_candidate_stages
from datapipe.tasks.registry import TASKS

RETRY_SUFFIX = "-r1"
"""A train group rendered again by `regen --rerender`: a new id, so new seeds."""


@dataclass
class RegenReport:
    task: str
    split: str
    blocks: int
    samples_before: int
    samples_after: int
    shards: int
    seconds: float
    rendered: int = 0


def regen(
    out: Path,
    task: str,
    split: str = "train",
    recipe: Path | None = None,
    rerender: bool = False,
) -> RegenReport:
    """Rebuild one task's split; with `rerender`, also render the groups it now lacks."""
    began = time.perf_counter()
    layout = OutputLayout(out)
    run_json = layout.run_json
    if not run_json.is_file():
        raise OutputError(f"{out}: no run.json: not a datapipe output", fix="check --out")
    run = json.loads(run_json.read_text())
    if run.get("status") != "finished":
        raise OutputError(
            f"{out}: the run is not finished (status {run.get('status')!r})",
            fix="finish it first with the same `datapipe run` command, then regenerate",
        )
    loaded = load_recipe(recipe or run["recipe_path"])
    check(loaded, run, task, split, out)
    layout.recover()

    store = CandidateStore(out)
    ledgers = {block: json.loads(p.read_text()) for block, p in layout.ledgers().items()}
    new, old = layout.staging(split, task)
    output = RunOutput(out, loaded, runner="regen", only={task}, shard_root=new)
    live = layout.task_dir(split, task)
    samples_before = _split_groups(live)[0]
    replaced = Counter(  # the task's pairs not made, as the counts hold them now
        r["reason"]
        for part_split, part in reject_parts(out)
        if part_split == split
        for r in part.select(["stage", "task", "reason"]).to_pylist()
        if r["stage"] == "tasks" and r["task"] == task
    )
    rows: list[dict[str, Any]] = []
    try:
        for block, ledger in sorted(ledgers.items()):
            block_split = ledger.get("split", "train")
            write = block_split == split
            groups = output.rebuild(block, store.load(block), block_split, write=write)
            if write:
                rows += _task_rejects(output, block, groups, task)
        rendered = 0
        if rerender:
            served = _split_groups(output.sinks[split].task_dir(task))[1]
            first = max(ledgers, default=-1) + 1
            rendered = rerender_groups(output, split, task, served, first)
            for block in sorted(set(layout.ledgers()) - set(ledgers)):  # the blocks it rendered
                committed = pq.read_table(layout.block_rejects(block)).to_pylist()
                rows += [r for r in committed if r["task"] == task]
    finally:
        output.teardown()
    staged = output.sinks[split].task_dir(task)
    staged.mkdir(parents=True, exist_ok=True)
    regen_rejects(staged).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(regen_rejects(staged)) as tmp:  # swapped in with the shards it explains
        pq.write_table(pa.Table.from_pylist(rows, schema=REJECTS_SCHEMA), tmp)
    record = {
        "task": task,
        "split": split,
        "recipe_path": str(loaded.path),
        "recipe_hash": loaded.recipe_hash,
        "replaced_recipe_hash": run["recipe_hash"],
        "blocks": len(ledgers),
        "rendered": rendered,
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    stats = output.sinks[split].write_stats(task, loaded.recipe_hash, {"regeneration": record})
    record |= {
        "samples_before": samples_before,
        "samples_after": stats["samples"],
        "pairs_by_language": stats["by_language"],
        "pair_reject_reasons": _reasons(rows, "tasks"),
        "replaced_pair_reject_reasons": dict(sorted(replaced.items())),
        "filter_reject_reasons": _reasons(rows, "filter"),
    }
    live.parent.mkdir(parents=True, exist_ok=True)
    if live.exists():
        live.rename(old)
    staged.rename(live)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(new, ignore_errors=True)
    output.write_rejects()
    run.setdefault("regenerations", []).append(record)
    if run.get("summary"):  # the counts a reader of run.json (and the report) sees
        counts = RunCounts.from_dict(run["summary"])
        counts.apply_regeneration(record)
        run["summary"] |= counts.to_dict()
    found = coverage(out)
    run["coverage"] = found.to_dict()
    floor = recipe_coverage_floor(found, loaded)
    run["coverage_floor"] = floor.to_dict() if floor else None
    if output.bench is not None and split == "bench":
        run["bench"] = _merge_bench_report(run.get("bench"), output.bench.report(), task)
    write_bytes(run_json, json.dumps(run, indent=2, ensure_ascii=False).encode())
    write_card(out)
    return RegenReport(
        task,
        split,
        len(ledgers),
        samples_before,
        stats["samples"],
        len(stats["shards"]),
        time.perf_counter() - began,
        rendered,
    )


def _task_rejects(
    output: RunOutput, block: int, groups: list[Group], task: str
) -> list[dict[str, Any]]:
    """What a rebuilt block gives the task no sample from: its pairs not made, and the
    renders the filter now rejects that the run kept (rejected for this task only: the
    other tasks keep their samples), each with its reason."""
    kinds = TASKS[task].group_kinds()
    committed = pq.read_table(OutputLayout(output.out).block_rejects(block)).to_pylist()
    rejected = {r["candidate_key"] for r in committed if r["stage"] == "filter"}
    rows = []
    for row in reject_rows(groups, output.graded.faults(block)):
        if row["stage"] == "tasks" and row["task"] == task:
            rows.append(row)
        elif row["stage"] == "filter" and row["candidate_key"] not in rejected:
            rows.append(row | {"task": task})
    feeding = {g.group_id for g in groups if g.kind in kinds}
    return [r for r in rows if r["group_id"] in feeding]


def _reasons(rows: list[dict[str, Any]], stage: str) -> dict[str, int]:
    return dict(sorted(Counter(r["reason"] for r in rows if r["stage"] == stage).items()))


def _split_groups(folder: Path) -> tuple[int, set[str]]:
    """Samples in a task's split folder and the groups they come from (manifests only)."""
    groups: set[str] = set()
    samples = 0
    for manifest in task_manifests(folder):
        column = pq.read_table(manifest, columns=["group_id"]).column(0).to_pylist()
        samples += len(column)
        groups.update(column)
    return samples, groups


def rerender_groups(
    output: RunOutput, split: str, task: str, served: set[str], first_block: int
) -> int:
    """Render only what the task lacks, as new blocks after the last one: for the bench,
    more groups of its short quotas (each quota's sequence goes on, so new ids and
    seeds); for train, once more each group that could feed the task and now gives it
    nothing, under a new id (`-r1`, so new seeds). Returns the renders made."""

    loaded = output.loaded
    table = output.store.read_table()
    next_index = 0 if table is None else max(table.column("group_index").to_pylist()) + 1
    again: dict[int, list[Group]] = {}
    if split == "train" and table is not None:
        columns = ["group_id", "group_kind", "language", "theme", "split"]
        stored = {r["group_id"]: r for r in table.select(columns).to_pylist()}
        kinds = TASKS[task].group_kinds()
        needed = sorted(
            gid
            for gid, row in stored.items()
            if row["split"] == "train"
            and row["group_kind"] in kinds
            and gid not in served
            and not gid.endswith(RETRY_SUFFIX)
            and gid + RETRY_SUFFIX not in stored
        )
        for i, gid in enumerate(needed):
            block = first_block + i // loaded.recipe.block_size
            again.setdefault(block, []).append(
                Group(
                    group_id=gid + RETRY_SUFFIX,
                    kind=stored[gid]["group_kind"],
                    index=next_index + i,
                    block=block,
                    language=stored[gid]["language"],
                    theme=stored[gid]["theme"],
                )
            )
    stages = StageChain(lambda: build_candidate_stages(loaded, output.out))
    summary = RunSummary()
    block = first_block
    try:
        while True:
            if split == "bench":
                blocks = output.bench.next_round(block, next_index, tasks={task})
            else:  # one attempt per lost group
                blocks, again = again, {}
            if not blocks:
                break
            for number, groups in sorted(blocks.items()):
                groups = stages.run(groups, summary)
                summary.rendered += sum(len(g.candidates) for g in groups)
                output.commit_block(number, groups, split, summary)
            block = max(blocks) + 1
            next_index += sum(len(g) for g in blocks.values())
    finally:
        stages.teardown()
    return summary.rendered


def _merge_bench_report(previous: Any, rebuilt: dict[str, Any], task: str) -> dict[str, Any]:
    """run.json's bench account with this task's quotas replaced by the rebuilt ones."""
    quotas = [q for q in (previous or {}).get("quotas", []) if q["task"] != task]
    quotas += [q for q in rebuilt["quotas"] if q["task"] == task]
    unfilled = [q for q in quotas if q["status"] != "met"]
    return {**(previous or {}), "quotas": quotas, "unfilled": unfilled, "complete": not unfilled}


def check(loaded: LoadedRecipe, run: dict[str, Any], task: str, split: str, out: Path) -> None:
    if loaded.generation_hash != run["generation_hash"]:
        raise OutputError(
            f"{loaded.path} would render other posters than {out} holds (generation hash "
            f"{loaded.generation_hash[:12]}, output {str(run['generation_hash'])[:12]}): "
            "regen only re-filters and rebuilds from stored renders",
            fix="change only thresholds, tasks or shard limits, or start a new --out",
        )
    if split not in ("train", "bench") or (split == "bench" and loaded.recipe.bench is None):
        splits = "train or bench" if loaded.recipe.bench is not None else "train"
        raise OutputError(f"split {split!r}: {loaded.path} makes only {splits}")
    enabled = loaded.recipe.bench_tasks() if split == "bench" else loaded.recipe.tasks.enabled()
    if task not in enabled:
        raise OutputError(
            f"task {task!r} is not in the {split} split of {loaded.path}",
            fix=f"use one of {', '.join(enabled)}",
        )
