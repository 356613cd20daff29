"""P4, shard writing: datapipe's ShardSink against a bare `webdataset.ShardWriter`.

Compares: samples/s and MB/s of `ShardSink.write_block` (reproducible tar members, a
sha256 per sample, the parquet manifest, write-then-rename with fsync) over those of
`webdataset.ShardWriter` writing the same samples' members with the same shard limits
into the same file system. Target: at least 0.9.

The samples are real task pairs (all six tasks) built from procedural renders at
1328 px on the long side, repeated under new keys to reach a few hundred. Each writer
runs five times, alternating, each time after `sync` (so neither pays for the other's
write-back); the best time of each counts.

    python benchmarks/shard_write.py [--quick] [--json out.json]
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Figure, Result, main

ROUNDS = 5


def make_samples(folder: Path, groups: int, count: int) -> tuple[Any, list[Any]]:
    from cpu_cost import load, rendered_groups

    from datapipe.stages.registry import build_annotators, build_dataset_stages

    # A small detector input: OCR only has to find the text boxes for fill's masks.
    small = {"det_limit_type": "max", "det_limit_side_len": 480}
    loaded = load(folder, "samples", {"stages": {"ocr": small}})
    built = rendered_groups(loaded, groups)
    for stage in build_annotators(loaded) + list(
        build_dataset_stages(loaded, folder / "unused").all
    ):
        stage.setup()
        built = stage.process_batch(built)
    base = [s for g in built for s in g.samples]
    samples = [
        dataclasses.replace(base[i % len(base)], key=f"{base[i % len(base)].key}-r{i:05d}")
        for i in range(count)
    ]
    return loaded, samples


def write_sink(loaded: Any, samples: list[Any], out: Path) -> float:
    from datapipe.io.shard_sink import ShardSink

    sink = ShardSink(out, "train", loaded.recipe.shards)
    os.sync()
    began = time.perf_counter()
    sink.write_block(0, samples)
    return time.perf_counter() - began


def write_raw(loaded: Any, samples: list[Any], out: Path) -> float:
    import webdataset as wds

    from datapipe.io.shard_sink import sample_files

    out.mkdir(parents=True)
    limits = loaded.recipe.shards
    os.sync()
    began = time.perf_counter()
    with wds.ShardWriter(
        str(out / "raw-%06d.tar"), maxcount=limits.max_samples, maxsize=limits.max_bytes, verbose=0
    ) as writer:
        for sample in samples:
            writer.write(sample_files(sample))
    return time.perf_counter() - began


def run(quick: bool) -> Result:
    from datapipe.io.shard_sink import sample_files

    groups, count = (3, 100) if quick else (12, 600)
    result = Result(
        "P4 shard writing",
        "samples/s of ShardSink over webdataset.ShardWriter on the same samples",
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loaded, samples = make_samples(folder, groups, count)
        megabytes = (
            sum(len(v) for s in samples for k, v in sample_files(s).items() if k != "__key__") / 1e6
        )
        sink_times, raw_times = [], []
        for i in range(ROUNDS):
            sink_times.append(write_sink(loaded, samples, folder / f"sink-{i}"))
            raw_times.append(write_raw(loaded, samples, folder / f"raw-{i}"))
    sink, raw = min(sink_times), min(raw_times)
    result.figures += [
        Figure("ShardSink / ShardWriter samples/s", raw / sink, ">= 0.9"),
        Figure("ShardSink samples/s", count / sink, unit="samples/s"),
        Figure("ShardSink MB/s", megabytes / sink, unit="MB/s"),
        Figure("ShardWriter samples/s", count / raw, unit="samples/s"),
        Figure("ShardWriter MB/s", megabytes / raw, unit="MB/s"),
    ]
    result.raw = {
        "samples": count,
        "megabytes": megabytes,
        "sink_seconds": sink_times,
        "raw_seconds": raw_times,
    }
    return result


if __name__ == "__main__":
    sys.exit(main(run, __doc__))
