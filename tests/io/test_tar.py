"""Shard tars are byte for byte what webdataset's TarWriter writes, only faster."""

from __future__ import annotations

import random

import pytest
import webdataset as wds

from datapipe.io.tar import FIXED_MTIME, MODE, OWNER, read_tar, write_tar


def samples(seed: int) -> list[dict[str, bytes | str]]:
    rng = random.Random(seed)
    out: list[dict[str, bytes | str]] = []
    for i in range(rng.randint(1, 8)):
        key = f"fill-{seed:04d}-{i:06d}" + "x" * rng.choice([0, 120])  # long names: PAX
        sample: dict[str, bytes | str] = {"__key__": key}
        for ext in rng.sample(["source.png", "target.png", "mask.png", "txt", "json"], 3):
            size = rng.choice([0, 1, 511, 512, 513, 10_240, rng.randint(0, 70_000)])
            sample[ext] = rng.randbytes(size)
        out.append(sample)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_tar_bytes_equal_webdatasets(tmp_path, seed):
    write_tar(tmp_path / "ours.tar", samples(seed))
    with (tmp_path / "theirs.tar").open("wb") as handle:
        writer = wds.TarWriter(
            handle, user=OWNER, group=OWNER, mode=MODE, mtime=FIXED_MTIME, encoder=False
        )
        for sample in samples(seed):
            writer.write(sample)
        writer.close()
    assert (tmp_path / "ours.tar").read_bytes() == (tmp_path / "theirs.tar").read_bytes()
    read = dict(read_tar(tmp_path / "ours.tar"))
    assert {s["__key__"] for s in samples(seed)} == set(read)


@pytest.mark.parametrize(
    ("sample", "message"),
    [({"txt": b"x"}, "__key__"), ({"__key__": "k", "txt": "not bytes"}, "k.txt")],
)
def test_a_bad_sample_is_refused_and_leaves_no_file(tmp_path, sample, message):
    with pytest.raises(ValueError, match=message):
        write_tar(tmp_path / "bad.tar", [{"__key__": "ok", "txt": b"fine"}, sample])
    assert list(tmp_path.iterdir()) == []
