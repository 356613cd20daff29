"""`datapipe verify` passes a sound output and names every kind of damage."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from datapipe.cli import app
from datapipe.images import encode_png
from datapipe.io.tar import read_tar, write_tar
from datapipe.verify import verify


@pytest.fixture
def copy(quickstart_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(quickstart_run[0], out)
    return out


def faults(out) -> dict[str, list[str]]:
    return {check.name: check.faults for check in verify(out) if check.faults}


def test_a_sound_output_is_clean(quickstart_run):
    result = CliRunner().invoke(app, ["verify", str(quickstart_run[0])])
    assert result.exit_code == 0, result.output
    assert "clean" in result.output
    checks = verify(quickstart_run[0])
    assert all(check.checked > 0 for check in checks)


def test_a_changed_pixel_breaks_the_digest_and_the_fill_invariant(copy):
    tar = sorted((copy / "datasets" / "train" / "fill").glob("*.tar"))[0]
    samples = [{"__key__": key, **files} for key, files in read_tar(tar)]
    first = samples[0]
    source = np.asarray(Image.open(io.BytesIO(first["source.png"]))).copy()
    mask = np.asarray(Image.open(io.BytesIO(first["mask.png"]))) > 127
    ys, xs = np.nonzero(~mask)
    source[ys[0], xs[0]] = 255 - source[ys[0], xs[0]]
    first["source.png"] = encode_png(Image.fromarray(source))
    write_tar(tar, samples)
    found = faults(copy)
    assert any("content differs" in f for f in found["manifests match tars"])
    assert any("outside the mask" in f for f in found["pair invariants"])
    result = CliRunner().invoke(app, ["verify", str(copy)])
    assert result.exit_code == 1 and "faults" in result.output


def test_a_copied_shard_duplicates_keys_and_breaks_stats(copy):
    tar = sorted((copy / "datasets" / "train" / "extend").glob("*.tar"))[0]
    shutil.copy(tar, tar.with_name("extend-train-999999.tar"))
    manifests = tar.parent / "__manifests__"
    shutil.copy(manifests / f"{tar.stem}.parquet", manifests / "extend-train-999999.parquet")
    found = faults(copy)
    assert found["keys unique per split"]
    assert any("extend" in f for f in found["stats match manifests"])


def test_missing_pieces_and_leftovers(copy):
    manifest = sorted((copy / "datasets" / "train" / "style" / "__manifests__").glob("*.parquet"))[
        0
    ]
    manifest.unlink()
    (copy / "blocks" / "block-000002.json").unlink()
    (copy / "datasets" / "train" / "fill" / "fill-train-000001.tar.tmp").write_bytes(b"half")
    found = faults(copy)
    assert any("no manifest" in f for f in found["manifests match tars"])
    assert any("block 2 has renders but no ledger" in f for f in found["blocks committed"])
    assert any(f.endswith("left by an interrupted write") for f in found["no temporary files"])


def test_not_an_output(tmp_path):
    (check,) = verify(tmp_path)
    assert "run.json" in check.faults[0]
