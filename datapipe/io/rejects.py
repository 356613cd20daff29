"""rejects.parquet as the output holds it: what every committed block rejected, except
where `datapipe regen` rebuilt a task's split, whose rejects are then the ones regen
recorded (beside the split's manifests, swapped in with its shards).

A block's own rejects file is never rewritten: it stays what its ledger committed, so a
rerun can check it. The merge happens here, for the run's `rejects.parquet` and for
`verify`, which counts the rows it expects the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datapipe.io.layout import OutputLayout, regen_rejects


def regenerated_splits(out: Path) -> dict[str, set[str]]:
    """split -> the tasks whose live split regen rebuilt (it left its rejects there)."""
    found: dict[str, set[str]] = {}
    for task_dir in OutputLayout(out).task_dirs():
        if regen_rejects(task_dir).is_file():
            found.setdefault(task_dir.parent.name, set()).add(task_dir.name)
    return found


def reject_parts(out: Path) -> list[tuple[str, pa.Table]]:
    """(split, rows) in block order, then one part per regenerated split: each block's
    rejects without the rows of a task regen rebuilt in that block's split."""
    layout = OutputLayout(out)
    replaced = regenerated_splits(out)
    parts = []
    for path in layout.all_block_rejects():
        block = int(path.name.split(".")[0].removeprefix("block-"))
        ledger = layout.ledger(block)
        split = (
            json.loads(ledger.read_text()).get("split", "train") if ledger.is_file() else "train"
        )
        table = pq.read_table(path)
        if replaced.get(split):
            rebuilt = pc.is_in(table["task"], value_set=pa.array(sorted(replaced[split])))
            table = table.filter(pc.invert(pc.fill_null(rebuilt, False)))
        parts.append((split, table))
    for split, tasks in sorted(replaced.items()):
        parts += [
            (split, pq.read_table(regen_rejects(layout.task_dir(split, t)))) for t in sorted(tasks)
        ]
    return parts
