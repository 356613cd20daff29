"""Training input: the six tasks of a split streamed as one weighted mixture.

    from datapipe.data import Mixture
    mix = Mixture("OUT", split="train", weights={"fill": 2, "extend": 1}, seed=0)
    mix.set_epoch(3)
    for sample in mix: ...                                  # dicts, images as PIL
    loader = mix.loader(batch_size=None, num_workers=4)     # a torch DataLoader

Each task is its own WebDataset stream over that task's shards, shuffled per epoch
(shard order from the seed and epoch, then a sample buffer); a draw picks a task by
weight with a generator seeded the same way. So an epoch is fixed by (seed, epoch,
number of workers), and a run resumes by setting its epoch again. In a DataLoader each
worker reads its own share of every task's shards (worker i of n: shards i, i+n, ...),
so each sample is read once per epoch. Without `cycle` a task that runs out leaves the
mixture and the others share its weight (the epoch ends when every task has run out);
with `cycle` it starts its next pass, so shares stay at the weights for any length.

torch is optional: it is imported only for `loader` and `decode="torch"`, and read
(never imported) to find a DataLoader worker's share.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq

from datapipe.errors import MissingDependencyError, OutputError
from datapipe.io.layout import task_manifests

Decode = Literal["pil", "torch", "bytes"]
DECODERS = {"pil": "pil", "torch": "torchrgb", "bytes": None}


def datasets_root(path: Path | str) -> Path:
    """`OUT/datasets` from an output folder or the datasets folder itself."""
    path = Path(path)
    return path / "datasets" if (path / "datasets").is_dir() else path


def task_shards(path: Path | str, split: str, task: str) -> list[str]:
    """A task's shard tars in order, as paths a WebDataset reader takes."""
    return [str(p) for p in sorted((datasets_root(path) / split / task).glob("*.tar"))]


class Mixture:
    """A split's tasks as one weighted, shuffled, resumable stream of samples."""

    def __init__(
        self,
        path: Path | str,
        split: str = "train",
        weights: dict[str, float] | None = None,
        decode: Decode = "pil",
        seed: int = 0,
        shuffle_buffer: int = 256,
        cycle: bool = False,
    ) -> None:
        """`weights` default to the tasks' sample counts (one epoch then reads every
        sample in proportion); a weight of 0 leaves a task out."""
        root = datasets_root(path) / split
        found = sorted(p.name for p in root.glob("*") if p.is_dir() and any(p.glob("*.tar")))
        if not found:
            raise OutputError(
                f"{root}: no task folder with shards", fix="pass a run's output folder (OUT)"
            )
        if weights is None:
            weights = {t: float(_samples(root / t)) for t in found}
        unknown = sorted(set(weights) - set(found))
        if unknown:
            raise OutputError(
                f"weights name tasks {unknown} that {root} has no shards of",
                fix=f"use some of {', '.join(found)}",
            )
        if decode not in DECODERS:
            raise ValueError(f"decode {decode!r}: use one of {', '.join(DECODERS)}")
        self.weights = {t: float(w) for t, w in sorted(weights.items()) if w > 0}
        self.shards = {t: task_shards(path, split, t) for t in self.weights}
        self.decode = decode
        self.seed = seed
        self.shuffle_buffer = shuffle_buffer
        self.cycle = cycle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker, workers = _worker()
        rng = random.Random(f"{self.seed}/{self.epoch}/{worker}/{workers}/mix")
        repeats = dict.fromkeys(self.weights, 0)
        empty = dict.fromkeys(self.weights, 0)
        streams = {t: self._stream(t, 0, worker, workers) for t in self.weights}
        while streams:
            tasks = list(streams)
            task = rng.choices(tasks, weights=[self.weights[t] for t in tasks])[0]
            sample = next(streams[task], None)
            if sample is None and self.cycle and empty[task] < _MAX_EMPTY_PASSES:
                repeats[task] += 1
                empty[task] += 1
                streams[task] = self._stream(task, repeats[task], worker, workers)
                continue
            if sample is None:
                del streams[task]
                continue
            empty[task] = 0
            sample["task"] = task
            yield sample

    def _stream(self, task: str, repeat: int, worker: int, workers: int) -> Iterator[dict]:
        """One pass over this worker's share of a task's shards, shuffled."""
        import webdataset as wds

        label = f"{self.seed}/{self.epoch}/{repeat}/{task}"
        shards = list(self.shards[task])
        random.Random(label).shuffle(shards)
        mine = shards[worker::workers]
        if not mine:
            return iter(())
        pipeline = wds.WebDataset(
            mine, shardshuffle=False, nodesplitter=None, workersplitter=None, empty_check=False
        ).shuffle(self.shuffle_buffer, rng=random.Random(f"{label}/{worker}/samples"))
        decoder = DECODERS[self.decode]
        if decoder is not None:
            pipeline = pipeline.decode(decoder)
        return (_plain(s) for s in pipeline)

    def loader(self, batch_size: int | None = None, num_workers: int = 0, **kwargs: Any) -> Any:
        """A torch DataLoader over the mixture (each worker reads its share of shards)."""
        try:
            from torch.utils.data import DataLoader, IterableDataset
        except ImportError:
            raise MissingDependencyError(
                "Mixture.loader needs torch", fix="pip install torch"
            ) from None

        mixture = self

        class _Dataset(IterableDataset):
            def __iter__(self) -> Iterator[dict[str, Any]]:
                return iter(mixture)

        collate = kwargs.pop("collate_fn", None if batch_size else _identity)
        return DataLoader(
            _Dataset(), batch_size=batch_size, num_workers=num_workers, collate_fn=collate, **kwargs
        )


_MAX_EMPTY_PASSES = 2
"""A cycled task whose share comes back empty this often is left out (a worker with no
shard of it), so a cycle never spins."""


def _identity(sample: Any) -> Any:
    return sample


def _plain(sample: dict[str, Any]) -> dict[str, Any]:
    """A WebDataset sample as a training step wants it: text as str, json as a dict."""
    for key in ("txt", "json"):
        value = sample.get(key)
        if isinstance(value, bytes):
            sample[key] = value.decode() if key == "txt" else json.loads(value)
    return sample


def _samples(task_dir: Path) -> int:
    """A task's committed samples, from its manifests."""
    return sum(pq.read_metadata(m).num_rows for m in task_manifests(task_dir))


def _worker() -> tuple[int, int]:
    """(this DataLoader worker, workers); (0, 1) outside one. torch is looked up, not
    imported: a process that never imported it is no DataLoader worker."""
    torch = sys.modules.get("torch")
    info = torch.utils.data.get_worker_info() if torch is not None else None
    return (info.id, info.num_workers) if info is not None else (0, 1)
