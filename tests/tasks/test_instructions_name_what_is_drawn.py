"""Instructions name the subject the render shows: the procedural renderer draws one icon
per shape (strawberries and apples are both a `fruit`), so its renders are never called by
an entity name they do not show; a model's renders are called by the entity asked for."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from datapipe.io.candidate_store import CandidateStore
from datapipe.io.layout import task_manifests


def test_identity_and_extend_instructions_name_the_drawn_icon(quickstart_run, quickstart):
    out, _ = quickstart_run
    drawn_as = quickstart.library.poster.drawn_as
    store = {r["key"]: r for r in CandidateStore(out).read_table().to_pylist()}
    checked = 0
    for task in ("identity", "extend"):
        for manifest in task_manifests(out / "datasets" / "train" / task):
            for row in pq.read_table(manifest).to_pylist():
                spec = json.loads(store[row["target_key"]]["meta_json"])["spec"]
                icon = drawn_as[spec["language"]][spec["entity_shape"]]
                words = row["instruction"]
                for line in spec["copy"]:  # the copy quotes the name on purpose
                    words = words.replace(line["text"], "")
                if icon != spec["entity_name"] and spec["entity_name"] in words:
                    raise AssertionError(f"{row['key']}: {row['instruction']!r} names the entity")
                checked += icon in row["instruction"]
    assert checked > 20, "instructions that name their subject name the icon"
