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

from datapipe.errors import OutputError
from datapipe.io.atomic import write_bytes
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.shard_sink import ShardSink
from datapipe.recipe import LoadedRecipe, load_recipe
from datapipe.stages.filter import FilterStage
from datapipe.stages.tasks import TaskStage

STAGING = ".regen"


@dataclass
class RegenReport:
    task: str
    split: str
    blocks: int
    samples_before: int
    samples_after: int
    shards: int
    seconds: float


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


def regen(out: Path, task: str, split: str = "train", recipe: Path | None = None) -> RegenReport:
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
    blocks = sorted(int(p.stem.split("-")[1]) for p in (out / "blocks").glob("block-*.json"))
    new, old = staging_paths(out, split, task)
    sink = ShardSink(new.parent / new.name, split, loaded.recipe.shards)
    filter_stage = FilterStage(loaded)
    task_stage = TaskStage(loaded, out, split, only={task})
    shards = 0
    for block in blocks:
        groups = task_stage.process_batch(filter_stage.process_batch(store.load(block)))
        shards += len(sink.write_block(block, (s for g in groups for s in g.samples)))
    staged = sink.task_dir(task)
    staged.mkdir(parents=True, exist_ok=True)
    record = {
        "task": task,
        "split": split,
        "recipe_path": str(loaded.path),
        "recipe_hash": loaded.recipe_hash,
        "replaced_recipe_hash": run["recipe_hash"],
        "blocks": len(blocks),
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    stats = sink.write_stats(task, loaded.recipe_hash, {"regeneration": record})

    live = out / "datasets" / split / task
    before = 0
    if live.is_dir() and (live / "stats.json").is_file():
        before = json.loads((live / "stats.json").read_text()).get("samples", 0)
    record |= {"samples_before": before, "samples_after": stats["samples"]}
    live.parent.mkdir(parents=True, exist_ok=True)
    if live.exists():
        live.rename(old)
    staged.rename(live)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(new, ignore_errors=True)
    run.setdefault("regenerations", []).append(record)
    write_bytes(run_json, json.dumps(run, indent=2, ensure_ascii=False).encode())
    return RegenReport(
        task, split, len(blocks), before, stats["samples"], shards, time.perf_counter() - began
    )


def check(loaded: LoadedRecipe, run: dict[str, Any], task: str, split: str, out: Path) -> None:
    if loaded.generation_hash != run["generation_hash"]:
        raise OutputError(
            f"{loaded.path} would render other posters than {out} holds (generation hash "
            f"{loaded.generation_hash[:12]}, output {str(run['generation_hash'])[:12]}): "
            "regen only re-filters and rebuilds from stored renders",
            fix="change only thresholds, tasks or shard limits, or start a new --out",
        )
    if split != "train":
        raise OutputError(f"split {split!r}: this output has only the train split")
    if task not in loaded.recipe.tasks.enabled():
        raise OutputError(
            f"task {task!r} is not enabled in {loaded.path}",
            fix=f"use one of {', '.join(loaded.recipe.tasks.enabled())}",
        )
