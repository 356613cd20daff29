"""Shard reading: a split read through `webdataset` from per-block shards (what runs wrote
before shards were sized: one tar per block and task, ~4 samples each at the
quickstart's block size) and from sized shards (`shards.max_samples` a tar, as
ShardSink writes them now). Same samples, same file system; the best of a few rounds,
each after `sync`. Reports samples/s of both and their ratio; no target, for
information (on a local disk opening a file is cheap; on network storage it is not).

    python benchmarks/shard_read.py [--quick] [--json out.json]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Figure, Result, main
from shard_write import make_samples

ROUNDS = 3
PER_BLOCK = 4
"""Samples of one task in one block at the quickstart's block size (layout, style)."""


def write_per_block(samples: list[Any], out: Path) -> list[str]:
    from datapipe.io.shard_sink import sample_files
    from datapipe.io.tar import write_tar

    out.mkdir(parents=True)
    paths = []
    for task in sorted({s.task for s in samples}):
        mine = [s for s in samples if s.task == task]
        for start in range(0, len(mine), PER_BLOCK):
            path = out / f"{task}-{start // PER_BLOCK:06d}.tar"
            write_tar(path, [sample_files(s) for s in mine[start : start + PER_BLOCK]])
            paths.append(str(path))
    return paths


def write_sized(loaded: Any, samples: list[Any], out: Path) -> list[str]:
    from datapipe.io.shard_sink import ShardSink

    sink = ShardSink(out, "train", loaded.recipe.shards)
    sink.write_block(0, samples)
    return [str(p) for p in sorted(out.glob("datasets/train/*/*.tar"))]


def read(shards: list[str], decode: bool) -> tuple[int, float]:
    import webdataset as wds

    os.sync()
    began = time.perf_counter()
    dataset = wds.WebDataset(shards, shardshuffle=False, empty_check=False)
    if decode:
        dataset = dataset.decode("pil")
    count = sum(1 for _ in dataset)
    return count, time.perf_counter() - began


def run(quick: bool) -> Result:
    groups, count = (3, 200) if quick else (12, 1200)
    result = Result(
        "shard reading",
        "webdataset samples/s from sized shards and from per-block shards (same samples)",
    )
    raw: dict[str, Any] = {"samples": count}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loaded, samples = make_samples(folder, groups, count)
        layouts = {
            "per-block": write_per_block(samples, folder / "per-block"),
            "sized": write_sized(loaded, samples, folder / "sized"),
        }
        for decode in (False, True):
            label = "decoded" if decode else "raw"
            for name, shards in layouts.items():
                times = []
                for _ in range(ROUNDS):
                    n, seconds = read(shards, decode)
                    assert n == len(samples), (name, n)
                    times.append(seconds)
                raw[f"{name}-{label}"] = {"shards": len(shards), "seconds": times}
                result.figures.append(
                    Figure(
                        f"{name} shards ({len(shards)}), {label}: samples/s",
                        len(samples) / min(times),
                        unit="samples/s",
                    )
                )
            ratio = min(raw[f"per-block-{label}"]["seconds"]) / min(
                raw[f"sized-{label}"]["seconds"]
            )
            result.figures.append(Figure(f"sized / per-block samples/s, {label}", ratio))
    result.raw = raw
    return result


if __name__ == "__main__":
    sys.exit(main(run, __doc__))
