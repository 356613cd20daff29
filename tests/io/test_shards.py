"""Shards: readable by any WebDataset reader, manifests match tars, names and bytes reproducible."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import webdataset as wds
from conftest import write_recipe
from shards import tars, tree_digest

from datapipe.io.shard_sink import ShardSink, sample_digest
from datapipe.io.tar import read_tar
from datapipe.loading import load_recipe
from datapipe.recipe import ShardConfig
from datapipe.records import Sample
from datapipe.runner.local import run_local


@pytest.fixture(scope="module")
def out(quickstart_run):
    return quickstart_run[0]


def test_every_tar_decodes_with_webdataset(out):
    for tar in tars(out):
        manifest = pq.read_table(tar.with_suffix(".parquet"))
        dataset = wds.WebDataset(str(tar), shardshuffle=False).decode("pil")
        n = 0
        for sample in dataset:
            assert sample["target.png"].size[0] > 0
            assert sample["source.png"].mode == "RGB"
            assert isinstance(sample["json"], dict) and sample["txt"]
            n += 1
        assert n == manifest.num_rows, tar


def test_every_task_loads_with_hugging_face_datasets(out, tmp_path):
    datasets = pytest.importorskip("datasets")
    task_dirs = sorted(p for p in (out / "datasets" / "train").iterdir() if p.is_dir())
    for task_dir in task_dirs:
        files = sorted(str(p) for p in task_dir.glob("*.tar"))
        loaded = datasets.load_dataset(
            "webdataset", data_files={"train": files}, split="train", cache_dir=str(tmp_path / "hf")
        )
        stats = json.loads((task_dir / "stats.json").read_text())
        assert loaded.num_rows == stats["samples"], task_dir.name
        row = loaded[0]
        assert row["target.png"].size[0] > 0 and row["json"]["task"] == task_dir.name


def test_manifests_match_tar_contents_one_to_one(out):
    all_keys = []
    for tar in tars(out):
        rows = pq.read_table(tar.with_suffix(".parquet")).to_pylist()
        members = dict(read_tar(tar))
        assert [r["key"] for r in rows] == list(members), tar
        for row in rows:
            files = members[row["key"]]
            assert row["members"] == sorted(f"{row['key']}.{ext}" for ext in files)
            assert row["sha256"] == sample_digest(files)
            assert row["shard"] == tar.name
        all_keys.extend(members)
    assert len(all_keys) == len(set(all_keys)), "a key appears twice"


def test_stats_equal_manifests(out):
    for task_dir in sorted(p for p in (out / "datasets" / "train").iterdir() if p.is_dir()):
        stats = json.loads((task_dir / "stats.json").read_text())
        manifests = sorted(task_dir.glob("*.parquet"))
        assert stats["samples"] == sum(pq.read_metadata(m).num_rows for m in manifests)
        assert sum(stats["by_language"].values()) == stats["samples"]
        assert [s["name"] for s in stats["shards"]] == [
            m.with_suffix(".tar").name for m in manifests
        ]


def test_no_temporary_files_left(out):
    assert not list(out.rglob("*.tmp"))


def test_same_recipe_twice_gives_byte_identical_output(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, {"block_size": 3}))
    run_local(recipe, tmp_path / "a", limit=8)
    run_local(recipe, tmp_path / "b", limit=8)
    a, b = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert any(name.startswith("datasets/") and name.endswith(".tar") for name in a)
    assert a == b


def fake_sample(i: int, size: int) -> Sample:
    return Sample(
        key=f"extend-k{i:03d}",
        task="extend",
        split="train",
        language="en",
        theme="food",
        sources=[b"s" * size],
        target=b"t" * size,
        mask=None,
        instruction="extend it",
        meta={
            "lineage": {"group_id": "g", "target": f"k{i}", "sources": [f"k{i}"]},
            "entity": {"id": "e"},
            "style": {"id": "s"},
            "params": {},
        },
    )


def test_shard_limits_split_a_block(tmp_path):
    sink = ShardSink(tmp_path, "train", ShardConfig(max_samples=4, max_bytes=10**9))
    infos = sink.write_block(7, [fake_sample(i, 10) for i in range(10)])
    assert [i.name for i in infos] == [
        "extend-train-000007",
        "extend-train-000007-1",
        "extend-train-000007-2",
    ]
    assert [i.samples for i in infos] == [4, 4, 2]
    sink = ShardSink(tmp_path / "b", "train", ShardConfig(max_samples=100, max_bytes=1_000_000))
    infos = sink.write_block(0, [fake_sample(i, 200_000) for i in range(5)])
    assert [i.samples for i in infos] == [2, 2, 1]
    stats = sink.write_stats("extend", "hash")
    assert stats["samples"] == 5 and len(stats["shards"]) == 3
