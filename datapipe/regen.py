"""`datapipe regen`: rebuild one task's split from the candidate store, without rendering.

After a threshold or task setting changes, the renders and their scores are still in
the candidate store: the filter and the one task's builder run again over every
committed block, and the task's shards are written to a staging folder and swapped in
by two renames. A crash leaves the old split (restored on the next start) or the new
one complete, never a mix; other tasks and splits are not touched. run.json and the
task's stats.json record the regeneration.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from datapipe.coverage import coverage, coverage_floor
from datapipe.errors import OutputError
from datapipe.io.atomic import write_bytes
from datapipe.io.candidate_store import CandidateStore
from datapipe.plan import TASK_GROUP_KIND
from datapipe.recipe import GROUP_KINDS, LoadedRecipe, load_recipe
from datapipe.records import Group

STAGING = ".regen"
RETRY_SUFFIX = "-r1"
"""A train group rendered again by `regen --rerender`: a new id, so new seeds."""
PER_POSTER_TASKS = ("extend", "fill", "identity")
"""Tasks every kept poster feeds, whatever its group kind."""


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


def staging_paths(out: Path, split: str, task: str) -> tuple[Path, Path]:
    """(new, old): the staged split and the replaced one, outside datasets/ so no reader
    ever globs them."""
    root = out / STAGING
    return root / f"{split}-{task}.new", root / f"{split}-{task}.old"


def recover(out: Path) -> list[str]:
    """Finish or undo an interrupted swap; returns what was done, for the log."""
    done = []
    for old in sorted((out / STAGING).glob("*.old")):
        split, task = old.name.removesuffix(".old").split("-", 1)
        live = out / "datasets" / split / task
        if not live.exists():
            old.rename(live)  # died between the two renames: the old split comes back
            done.append(f"restored {split}/{task}")
        else:
            shutil.rmtree(old)  # died after the swap: the new split is complete
            done.append(f"removed the replaced {split}/{task}")
    for new in sorted((out / STAGING).glob("*.new")):
        shutil.rmtree(new)  # died while staging: the live split was never touched
        done.append(f"dropped a half-built {new.name}")
    return done


def regenerated_tasks(run: dict[str, Any]) -> set[tuple[str, str]]:
    return {(r["split"], r["task"]) for r in run.get("regenerations", [])}


def regen(
    out: Path,
    task: str,
    split: str = "train",
    recipe: Path | None = None,
    rerender: bool = False,
) -> RegenReport:
    """Rebuild one task's split; with `rerender`, also render the groups it now lacks."""
    from datapipe.runner.output import RunOutput

    began = time.perf_counter()
    run_json = out / "run.json"
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
    recover(out)

    store = CandidateStore(out)
    ledgers = {
        int(p.stem.split("-")[1]): json.loads(p.read_text())
        for p in sorted((out / "blocks").glob("block-*.json"))
    }
    new, old = staging_paths(out, split, task)
    output = RunOutput(out, loaded, runner="regen", only={task}, shard_root=new)
    live = out / "datasets" / split / task
    samples_before = _split_groups(live)[0]
    try:
        for block, ledger in sorted(ledgers.items()):
            block_split = ledger.get("split", "train")
            output.rebuild(block, store.load(block), block_split, write=block_split == split)
        rendered = 0
        if rerender:
            served = _split_groups(output.sinks[split].task_dir(task))[1]
            rendered = rerender_groups(output, split, task, served, max(ledgers, default=-1) + 1)
    finally:
        output.teardown()
    staged = output.sinks[split].task_dir(task)
    staged.mkdir(parents=True, exist_ok=True)
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
    record |= {"samples_before": samples_before, "samples_after": stats["samples"]}
    live.parent.mkdir(parents=True, exist_ok=True)
    if live.exists():
        live.rename(old)
    staged.rename(live)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(new, ignore_errors=True)
    if rendered:
        output.write_rejects()
    run.setdefault("regenerations", []).append(record)
    found = coverage(out)
    run["coverage"] = found.to_dict()
    floor = coverage_floor(found, loaded)
    run["coverage_floor"] = floor.to_dict() if floor else None
    if output.bench is not None and split == "bench":
        run["bench"] = _merge_bench_report(run.get("bench"), output.bench.report(), task)
    write_bytes(run_json, json.dumps(run, indent=2, ensure_ascii=False).encode())
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


def _split_groups(folder: Path) -> tuple[int, set[str]]:
    """Samples in a task's split folder and the groups they come from (manifests only)."""
    groups: set[str] = set()
    samples = 0
    for manifest in sorted(folder.glob("*.parquet")):
        column = pq.read_table(manifest, columns=["group_id"]).column(0).to_pylist()
        samples += len(column)
        groups.update(column)
    return samples, groups


def rerender_groups(output: Any, split: str, task: str, served: set[str], first_block: int) -> int:
    """Render only what the task lacks, as new blocks after the last one: for the bench,
    more groups of its short quotas (each quota's sequence goes on, so new ids and
    seeds); for train, once more each group that could feed the task and now gives it
    nothing, under a new id (`-r1`, so new seeds). Returns the renders made."""
    from datapipe.runner.output import run_stage
    from datapipe.runner.summary import RunSummary
    from datapipe.stages.registry import build_candidate_stages

    loaded = output.loaded
    table = output.store.read_table()
    next_index = 0 if table is None else max(table.column("group_index").to_pylist()) + 1
    again: dict[int, list[Group]] = {}
    if split == "train" and table is not None:
        columns = ["group_id", "group_kind", "language", "theme", "split"]
        stored = {r["group_id"]: r for r in table.select(columns).to_pylist()}
        kinds = GROUP_KINDS if task in PER_POSTER_TASKS else (TASK_GROUP_KIND[task],)
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
    stages = build_candidate_stages(loaded, output.out)
    for stage in stages:
        stage.setup()
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
                for stage in stages:
                    groups = run_stage(stage, groups, summary)
                summary.rendered += sum(len(g.candidates) for g in groups)
                output.commit_block(number, groups, split, summary)
            block = max(blocks) + 1
            next_index += sum(len(g) for g in blocks.values())
    finally:
        for stage in stages:
            stage.teardown()
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
