"""The training mixture: task shares follow the weights, an epoch reads each sample once
(in one process and across DataLoader workers), the order is fixed by seed and epoch."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from datapipe.data import Mixture, task_shards
from datapipe.errors import OutputError
from datapipe.io.shard_sink import ShardSink
from datapipe.recipe import ShardConfig
from datapipe.records import Sample

TASKS = {"extend": 30, "fill": 20, "style": 10}


def png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (value % 256, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def sample(task: str, i: int) -> Sample:
    return Sample(
        key=f"{task}-k{i:03d}",
        task=task,
        split="train",
        language="en",
        theme="food",
        sources=[png(i)],
        target=png(i + 1),
        mask=None,
        instruction=f"{task} {i}",
        meta={
            "task": task,
            "lineage": {"group_id": f"g{i}", "target": f"k{i}", "sources": [f"k{i}"]},
            "entity": {"id": "e"},
            "style": {"id": "s"},
            "params": {"mask_kind": "free_form"},
        },
    )


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mixture")
    sink = ShardSink(out, "train", ShardConfig(max_samples=4, max_bytes=10**9))
    for block in range(2):
        sink.write_block(
            block,
            [sample(t, block * 100 + i) for t, n in TASKS.items() for i in range(n // 2)],
        )
    for task in TASKS:
        sink.write_stats(task, "hash")
    return out


def keys(samples) -> list[str]:
    return [s["__key__"] for s in samples]


def test_shares_follow_the_weights_over_10000_draws(out):
    weights = {"extend": 0.5, "fill": 0.3, "style": 0.2}
    mixture = Mixture(out, weights=weights, decode="bytes", seed=7, cycle=True)
    drawn = Counter()
    for n, s in enumerate(mixture, 1):
        drawn[s["task"]] += 1
        if n == 10_000:
            break
    for task, weight in weights.items():
        assert abs(drawn[task] / 10_000 - weight) < 0.02, (task, drawn)


def test_an_epoch_reads_each_sample_once_in_an_order_fixed_by_seed_and_epoch(out):
    mixture = Mixture(out, decode="bytes", seed=1)
    first = keys(mixture)
    assert Counter(first) == Counter(
        f"{t}-k{b * 100 + i:03d}" for t, n in TASKS.items() for b in range(2) for i in range(n // 2)
    )
    assert keys(mixture) == first
    mixture.set_epoch(1)
    second = keys(mixture)
    assert sorted(second) == sorted(first) and second != first
    resumed = Mixture(out, decode="bytes", seed=1)
    resumed.set_epoch(1)
    assert keys(resumed) == second


def test_decodes_to_pil_and_tensors(out):
    s = next(iter(Mixture(out, decode="pil")))
    assert isinstance(s["target.png"], Image.Image) and isinstance(s["json"], dict)
    assert s["txt"].startswith(s["task"])
    torch = pytest.importorskip("torch")
    s = next(iter(Mixture(out, decode="torch")))
    assert isinstance(s["source.png"], torch.Tensor) and s["source.png"].shape == (3, 4, 4)


def test_a_dataloader_with_workers_reads_each_sample_once_per_epoch(out):
    pytest.importorskip("torch")
    mixture = Mixture(out, decode="pil", seed=3)
    total = sum(TASKS.values())
    for epoch in range(2):
        mixture.set_epoch(epoch)
        seen = keys(mixture.loader(num_workers=2))
        assert len(seen) == total and len(set(seen)) == total


def test_shard_lists_and_errors(out):
    assert len(task_shards(out, "train", "extend")) == 8  # 30 samples, 4 a shard
    with pytest.raises(OutputError, match="no shards of"):
        Mixture(out, weights={"layout": 1.0})
