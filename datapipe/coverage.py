"""Coverage: what each entity, style, layout, theme and language got, read from the output.

A user who adds an entity or a style wants to know whether it appeared, how many of its
renders were kept, and how many samples each task made of it. Everything is counted from
the files on disk (candidate store, rejects table, shard manifests), so it stays true
after a regen or a resume.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from datapipe.io.candidate_store import CandidateStore
from datapipe.io.layout import dataset_manifests

DIMENSIONS = ("entity_id", "style_id", "layout_id", "theme", "language")
DROPPED_AT = ("filter", "near_duplicates")
"""Stages whose rejects mean a render was not kept."""


@dataclass
class Coverage:
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    """dimension -> value -> {"renders", "kept", "samples", "<task>" ...}."""
    tasks: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "by": self.counts}

    def least(self, dimension: str, n: int = 5) -> list[tuple[str, dict[str, int]]]:
        """The values of a dimension with the fewest samples (then kept renders)."""
        rows = self.counts.get(dimension, {})
        return sorted(rows.items(), key=lambda kv: (kv[1]["samples"], kv[1]["kept"], kv[0]))[:n]


def coverage(out: Path) -> Coverage:
    """Count renders, kept renders and samples per task by every dimension of `out`."""
    table = CandidateStore(out).read_table()
    result = Coverage()
    if table is None:
        return result
    columns = ["key", *DIMENSIONS]
    renders = table.select([c for c in columns if c in table.column_names]).to_pylist()
    by_key = {row["key"]: row for row in renders}
    dropped: set[str] = set()
    rejects = out / "rejects.parquet"
    if rejects.is_file():
        for row in pq.read_table(rejects, columns=["candidate_key", "stage"]).to_pylist():
            if row["stage"] in DROPPED_AT:
                dropped.add(row["candidate_key"])
    counts: dict[str, dict[str, dict[str, int]]] = {d: {} for d in DIMENSIONS}

    def bump(row: dict[str, Any], what: str) -> None:
        for dimension in DIMENSIONS:
            value = row.get(dimension)
            if value is None:
                continue
            cell = counts[dimension].setdefault(
                str(value), defaultdict(int, renders=0, kept=0, samples=0)
            )
            cell[what] += 1

    for row in renders:
        bump(row, "renders")
        if row["key"] not in dropped:
            bump(row, "kept")
    tasks: set[str] = set()
    for manifest in dataset_manifests(out / "datasets"):
        for sample in pq.read_table(manifest, columns=["task", "target_key"]).to_pylist():
            target = by_key.get(sample["target_key"])
            if target is None:
                continue
            tasks.add(sample["task"])
            bump(target, "samples")
            bump(target, sample["task"])
    result.counts = {d: {k: dict(v) for k, v in sorted(rows.items())} for d, rows in counts.items()}
    result.tasks = sorted(tasks)
    return result


MAX_MISSES_LISTED = 50


@dataclass
class CoverageFloor:
    """Entity x task cells under the recipe's `coverage.min_samples_per_entity_task`."""

    floor: int
    cells: int
    missed: list[tuple[str, str, int]]
    """(entity, task, samples), fewest first."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_samples_per_entity_task": self.floor,
            "cells": self.cells,
            "missed": len(self.missed),
            "met": not self.missed,
            "message": self.message() if self.missed else "",
            "fewest": [
                {"entity_id": e, "task": t, "samples": n}
                for e, t, n in self.missed[:MAX_MISSES_LISTED]
            ],
        }

    def message(self) -> str:
        worst = ", ".join(f"{e}/{t} {n}" for e, t, n in self.missed[:5])
        return (
            f"coverage floor missed: {len(self.missed)} of {self.cells} entity x task cells "
            f"have fewer than {self.floor} samples (fewest: {worst}); run.json: coverage_floor"
        )


def coverage_floor(
    found: Coverage, entities: list[str], tasks: list[str], floor: int
) -> CoverageFloor:
    """The cells of `entities` x `tasks` with fewer than `floor` samples."""
    rows = found.counts.get("entity_id", {})
    missed = [
        (entity, task, rows.get(entity, {}).get(task, 0))
        for entity in entities
        for task in tasks
        if rows.get(entity, {}).get(task, 0) < floor
    ]
    missed.sort(key=lambda m: (m[2], m[0], m[1]))
    return CoverageFloor(floor=floor, cells=len(entities) * len(tasks), missed=missed)
