"""The local runner: every stage in this process, one block of groups at a time.

It is what tests, notebooks and the quickstart use, and it fixes the order of work
that any other runner must reproduce: candidate stages, commit to the candidate
store, filter and task stages, shards, then stats, rejects and run.json.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import datapipe
from datapipe.errors import OutputError
from datapipe.io.atomic import atomic_path, write_bytes
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.shard_sink import ShardSink
from datapipe.plan import plan_groups
from datapipe.recipe import LoadedRecipe
from datapipe.records import Group
from datapipe.runner.summary import RunSummary
from datapipe.stages.base import Stage
from datapipe.stages.registry import build_candidate_stages, build_dataset_stages

SPLIT = "train"
VERSIONED_PACKAGES = ("pillow", "numpy", "pyarrow", "webdataset", "rapidocr", "onnxruntime")

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
"""Called after each block with the running summary and the total number of groups."""


def versions() -> dict[str, str]:
    found = {"datapipe": datapipe.__version__, "python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def check_output(out: Path, loaded: LoadedRecipe) -> None:
    """Refuse to mix two recipes' outputs in one directory."""
    run_json = out / "run.json"
    if not run_json.is_file():
        return
    try:
        previous = json.loads(run_json.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise OutputError(
            f"{run_json}: unreadable ({exc})", fix="remove the directory or pick another --out"
        ) from None
    if previous.get("generation_hash") != loaded.generation_hash:
        old = str(previous.get("generation_hash"))[:12]
        raise OutputError(
            f"{out} holds a run of another recipe (generation hash {old}, "
            f"this recipe {loaded.generation_hash[:12]})",
            fix="choose a new --out, or delete the old output",
        )


def run_stage(stage: Stage, groups: list[Group], summary: RunSummary) -> list[Group]:
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


def reject_rows(groups: list[Group]) -> list[dict[str, Any]]:
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


def run_local(
    loaded: LoadedRecipe,
    out: Path,
    limit: int | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Run a recipe end to end in this process and write everything under `out`."""
    started = datetime.now(timezone.utc)
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    check_output(out, loaded)
    slots = plan_groups(loaded, limit)
    blocks: dict[int, list[Group]] = {}
    for slot in slots:
        blocks.setdefault(slot.block, []).append(slot.to_group())

    candidate_stages = build_candidate_stages(loaded)
    dataset_stages = build_dataset_stages(loaded)
    for stage in (*candidate_stages, *dataset_stages):
        stage.setup()

    store = CandidateStore(out)
    sink = ShardSink(out, SPLIT, loaded.recipe.shards)
    summary = RunSummary()
    rejects: list[dict[str, Any]] = []
    tasks_written: set[str] = set()
    try:
        for block, groups in blocks.items():
            for stage in candidate_stages:
                groups = run_stage(stage, groups, summary)
            store.commit(block, groups)
            for stage in dataset_stages:
                groups = run_stage(stage, groups, summary)
            began_sink = time.perf_counter()
            shards = sink.write_block(block, (s for g in groups for s in g.samples))
            sink_timing = summary.timing("shards")
            sink_timing.seconds += time.perf_counter() - began_sink
            sink_timing.items += sum(info.samples for info in shards)
            sink_timing.batches += 1
            tasks_written.update(info.task for info in shards)
            rejects.extend(reject_rows(groups))
            summary.add_groups(groups)
            summary.blocks += 1
            if progress:
                progress(summary, len(slots))
    finally:
        for stage in (*candidate_stages, *dataset_stages):
            stage.teardown()

    for task in sorted(tasks_written):
        sink.write_stats(task, loaded.recipe_hash)
    with atomic_path(out / "rejects.parquet") as tmp:
        pq.write_table(pa.Table.from_pylist(rejects, schema=REJECTS_SCHEMA), tmp)
    summary.wall_seconds = time.perf_counter() - began
    write_run_json(out, loaded, summary, limit, started)
    return summary


def write_run_json(
    out: Path, loaded: LoadedRecipe, summary: RunSummary, limit: int | None, started: datetime
) -> None:
    record = {
        "recipe_name": loaded.recipe.name,
        "recipe_path": str(loaded.path),
        "recipe_hash": loaded.recipe_hash,
        "generation_hash": loaded.generation_hash,
        "library_digest": loaded.library.digest,
        "recipe": loaded.recipe.model_dump(mode="json"),
        "limit": limit,
        "runner": "local",
        "versions": versions(),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": summary.to_dict(),
    }
    write_bytes(out / "run.json", json.dumps(record, indent=2, ensure_ascii=False).encode())
