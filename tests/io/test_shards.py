"""Shards: readable by any WebDataset reader, manifests match tars, names and bytes reproducible."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import webdataset as wds
from conftest import write_recipe
from shards import tars, tree_digest

from datapipe.io.layout import manifest_of, stats_path, tar_of, task_manifests
from datapipe.io.shard_sink import ShardSink, sample_digest, sample_files
from datapipe.io.tar import read_tar, write_tar
from datapipe.loading import load_recipe
from datapipe.recipe import ShardConfig
from datapipe.records import Sample
from datapipe.runner.local import run_local


@pytest.fixture(scope="module")
def out(quickstart_run):
    return quickstart_run[0]


def test_every_tar_decodes_with_webdataset(out):
    for tar in tars(out):
        manifest = pq.read_table(manifest_of(tar))
        dataset = wds.WebDataset(str(tar), shardshuffle=False).decode("pil")
        n = 0
        for sample in dataset:
            assert sample["target.png"].size[0] > 0
            assert sample["source.png"].mode == "RGB"
            assert isinstance(sample["json"], dict) and sample["txt"]
            n += 1
        assert n == manifest.num_rows, tar


def test_every_task_loads_with_hugging_face_datasets_from_its_folder(out, tmp_path):
    datasets = pytest.importorskip("datasets")
    for task_dir in sorted(p for p in (out / "datasets" / "train").iterdir() if p.is_dir()):
        loaded = datasets.load_dataset(
            "webdataset", data_dir=str(task_dir), split="train", cache_dir=str(tmp_path / "hf")
        )
        stats = json.loads(stats_path(task_dir).read_text())
        assert loaded.num_rows == stats["samples"], task_dir.name
        row = loaded[0]
        assert row["target.png"].size[0] > 0 and row["json"]["task"] == task_dir.name


def test_hugging_face_loads_a_task_by_name_from_the_dataset_card(out, tmp_path):
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset(
        str(out / "datasets"), "fill", split="train", cache_dir=str(tmp_path / "hf")
    )
    stats = json.loads(stats_path(out / "datasets" / "train" / "fill").read_text())
    assert loaded.num_rows == stats["samples"]
    row = loaded[0]
    assert row["mask.png"].mode in ("L", "1", "RGB") and row["source.png"].size[0] > 0


def test_ray_data_reads_a_task_folder(out, ray_session):
    ray = pytest.importorskip("ray")
    task_dir = out / "datasets" / "train" / "style"
    rows = ray.data.read_webdataset(str(task_dir)).take_all()
    assert len(rows) == json.loads(stats_path(task_dir).read_text())["samples"]
    assert {r["json"]["task"] for r in rows} == {"style"}


def test_quickstart_writes_each_task_in_the_fewest_shards_its_limits_allow(out, quickstart):
    limits = quickstart.recipe.shards
    for task_dir in sorted(p for p in (out / "datasets" / "train").iterdir() if p.is_dir()):
        stats = json.loads(stats_path(task_dir).read_text())
        sizes = [s["samples"] for s in stats["shards"]]
        assert len(sizes) == -(-stats["samples"] // limits.max_samples), task_dir.name
        assert all(n == limits.max_samples for n in sizes[:-1])


def test_manifests_match_tar_contents_one_to_one(out):
    all_keys = []
    for tar in tars(out):
        rows = pq.read_table(manifest_of(tar)).to_pylist()
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
        stats = json.loads(stats_path(task_dir).read_text())
        manifests = task_manifests(task_dir)
        assert stats["samples"] == sum(pq.read_metadata(m).num_rows for m in manifests)
        assert sum(stats["by_language"].values()) == stats["samples"]
        assert [s["name"] for s in stats["shards"]] == [tar_of(m).name for m in manifests]


def test_no_temporary_files_left(out):
    assert not list(out.rglob("*.tmp"))


def test_same_recipe_twice_gives_byte_identical_output(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, {"block_size": 3}))
    run_local(recipe, tmp_path / "a", limit=8)
    run_local(recipe, tmp_path / "b", limit=8)
    a, b = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert any(name.startswith("datasets/") and name.endswith(".tar") for name in a)
    assert a == b


def test_at_small_limits_every_shard_but_a_tasks_last_is_full(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path, {"block_size": 3, "shards": {"max_samples": 5}}))
    run_local(recipe, tmp_path / "out", limit=8)
    for task_dir in sorted((tmp_path / "out" / "datasets" / "train").iterdir()):
        stats = json.loads(stats_path(task_dir).read_text())
        sizes = [shard["samples"] for shard in stats["shards"]]
        assert sizes[:-1] == [5] * (len(sizes) - 1) and 0 < sizes[-1] <= 5, task_dir.name
        assert len(sizes) == -(-stats["samples"] // 5)


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


def test_shards_fill_across_blocks_and_only_the_last_is_short(tmp_path):
    sink = ShardSink(tmp_path, "train", ShardConfig(max_samples=4, max_bytes=10**9))
    for block in range(4):
        sink.write_block(block, [fake_sample(block * 3 + i, 10) for i in range(3)])
    stats = sink.write_stats("extend", "hash")
    assert [s["name"] for s in stats["shards"]] == [f"extend-train-{i:06d}.tar" for i in range(3)]
    assert [s["samples"] for s in stats["shards"]] == [4, 4, 4]
    sink = ShardSink(tmp_path / "b", "train", ShardConfig(max_samples=100, max_bytes=1_000_000))
    infos = sink.write_block(0, [fake_sample(i, 200_000) for i in range(5)])
    assert [i.samples for i in infos] == [2, 2, 1]
    assert all(i.bytes <= 1_000_000 for i in infos)


def write_blocks(sink: ShardSink, blocks: range) -> None:
    for block in blocks:
        sink.write_block(block, [fake_sample(block * 3 + i, 1000 + block) for i in range(3)])


def test_an_appended_shard_equals_one_written_at_once_and_resumes_after_a_crash(tmp_path):
    limits = ShardConfig(max_samples=5, max_bytes=10**9)
    write_blocks(ShardSink(tmp_path / "whole", "train", limits), range(5))
    # a new sink (a rerun) takes up where committed blocks left off ...
    write_blocks(ShardSink(tmp_path / "resumed", "train", limits), range(2))
    write_blocks(ShardSink(tmp_path / "resumed", "train", limits), range(2, 5))
    # ... and cuts back what a block that never got its ledger wrote (blocks 3, 4 here)
    write_blocks(ShardSink(tmp_path / "crashed", "train", limits), range(5))
    write_blocks(ShardSink(tmp_path / "crashed", "train", limits), range(3, 5))
    whole = tree_digest(tmp_path / "whole")
    assert len([n for n in whole if n.endswith(".tar")]) == 3
    assert tree_digest(tmp_path / "resumed") == whole == tree_digest(tmp_path / "crashed")
    tars = sorted((tmp_path / "whole" / "datasets" / "train" / "extend").glob("*.tar"))
    assert [len(list(read_tar(t))) for t in tars] == [5, 5, 5]
    first = [fake_sample(b * 3 + i, 1000 + b) for b in range(5) for i in range(3)][:5]
    write_tar(tmp_path / "one.tar", [sample_files(s) for s in first])
    assert (tmp_path / "one.tar").read_bytes() == tars[0].read_bytes()
