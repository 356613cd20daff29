"""The candidate store: every render with every score, kept or not.

Renders are the expensive asset, so each block of groups is committed here before any
threshold is applied: `candidates/cand-NNNNNN.tar` holds the images, masks and full
metadata; `cand-NNNNNN.parquet` holds one row per candidate with every score as a
column, for analysis and for re-running filters and tasks without a GPU. The parquet
is written after the tar and marks the block committed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from datapipe.hashing import canonical_json
from datapipe.io.atomic import atomic_path
from datapipe.io.layout import OutputLayout
from datapipe.io.tar import read_tar, write_tar
from datapipe.records import Candidate, Group, candidate_from_metadata

SCORE_PREFIX = "score."


def candidate_row(group: Group, candidate: Candidate) -> dict[str, Any]:
    spec = candidate.spec
    row: dict[str, Any] = {
        "key": candidate.key,
        "group_id": group.group_id,
        "group_kind": group.kind,
        "group_index": group.index,
        "split": group.split,
        "bench_task": group.task,
        "block": group.block,
        "member": spec.member,
        "language": spec.language,
        "theme": spec.theme,
        "entity_id": spec.entity_id,
        "style_id": spec.style_id,
        "layout_id": spec.layout_id,
        "aspect_ratio": spec.aspect_ratio,
        "width": spec.width,
        "height": spec.height,
        "seed": spec.seed,
        "image_bytes": len(candidate.image),
        "phash": candidate.details.get("phash"),
        "render_error": candidate.details.get("render", {}).get("error"),
        "image_error": candidate.details.get("image", {}).get("error"),
        "meta_json": canonical_json(group_fields(group) | candidate.metadata()).decode(),
    }
    for name, value in sorted(candidate.scores.items()):
        row[SCORE_PREFIX + name] = value
    return row


def group_fields(group: Group) -> dict[str, Any]:
    return {
        "group": {
            "group_id": group.group_id,
            "kind": group.kind,
            "index": group.index,
            "block": group.block,
            "language": group.language,
            "theme": group.theme,
            "split": group.split,
            "task": group.task,
        }
    }


class CandidateStore:
    def __init__(self, out: Path) -> None:
        self.layout = OutputLayout(out)
        self.root = self.layout.candidates

    def paths(self, block: int) -> tuple[Path, Path]:
        return self.layout.candidate_files(block)

    def is_committed(self, block: int) -> bool:
        tar, parquet = self.paths(block)
        return tar.is_file() and parquet.is_file()

    def committed_groups(self, block: int) -> list[str] | None:
        """Group ids of a committed block, in order; None when the block is not committed."""
        if not self.is_committed(block):
            return None
        try:
            column = pq.read_table(self.paths(block)[1], columns=["group_id"]).column(0)
        except (OSError, pa.ArrowException):
            return None
        return list(dict.fromkeys(column.to_pylist()))

    def commit(self, block: int, groups: list[Group]) -> int:
        """Write the block's tar, then its parquet; return the number of candidates."""
        tar_path, parquet_path = self.paths(block)
        members = []
        rows = []
        for group in groups:
            for candidate in group.candidates:
                sample: dict[str, bytes | str] = {"__key__": candidate.key}
                if candidate.image:
                    sample["png"] = candidate.image
                if candidate.subject_mask is not None:
                    sample["mask.png"] = candidate.subject_mask
                sample["json"] = canonical_json(group_fields(group) | candidate.metadata())
                members.append(sample)
                rows.append(candidate_row(group, candidate))
        write_tar(tar_path, members)
        table = pa.Table.from_pylist(rows, schema=_schema(rows))
        with atomic_path(parquet_path) as tmp:
            pq.write_table(table, tmp)
        return len(rows)

    def load(self, block: int) -> list[Group]:
        """The block's groups with their candidates, as they were committed."""
        tar_path, _ = self.paths(block)
        groups: dict[str, Group] = {}
        for _key, files in read_tar(tar_path):
            meta = json.loads(files["json"])
            info = meta.pop("group")
            group = groups.get(info["group_id"])
            if group is None:
                group = Group(
                    group_id=info["group_id"],
                    kind=info["kind"],
                    index=info["index"],
                    block=info["block"],
                    language=info["language"],
                    theme=info["theme"],
                    split=info["split"],
                    task=info["task"],
                )
                groups[group.group_id] = group
            group.candidates.append(
                candidate_from_metadata(meta, files.get("png", b""), files.get("mask.png"))
            )
        return list(groups.values())

    def read_table(self) -> pa.Table | None:
        """Every committed candidate row, all blocks, in block order."""
        files = self.layout.candidate_manifests()
        if not files:
            return None
        return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")


def _schema(rows: list[dict[str, Any]]) -> pa.Schema:
    """Scores are float64 even when a block happens to hold only None for one."""
    names: list[str] = []
    for row in rows:
        names.extend(name for name in row if name not in names)
    fields = []
    for name in names:
        if name.startswith(SCORE_PREFIX):
            fields.append(pa.field(name, pa.float64()))
        else:
            sample = next((row[name] for row in rows if row.get(name) is not None), None)
            fields.append(pa.field(name, pa.int64() if isinstance(sample, int) else pa.string()))
    return pa.schema(fields)
