"""Sample metadata as written: every score a number, so a typed reader keeps every sample."""

from __future__ import annotations

import io
import json
import math

import pytest
from PIL import Image

from datapipe.io.shard_sink import sample_files
from datapipe.io.tar import write_tar
from datapipe.records import Sample


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def sample(i: int, height: float | None) -> Sample:
    scores = {"ocr.glyph_height": height, "ocr.min_found_ned": 1.0}
    return Sample(
        key=f"fill-single-00000000-{i:06d}-0",
        task="fill",
        split="train",
        language="en",
        theme="food",
        sources=[png()],
        target=png(),
        mask=None,
        instruction="fill it",
        meta={"task": "fill", "scores": {"target": scores, "sources": [scores], "pair": {}}},
    )


def test_a_score_that_does_not_apply_is_written_as_nan_and_kept_as_none_in_memory():
    made = sample(0, None)
    meta = json.loads(sample_files(made)["json"])
    assert math.isnan(meta["scores"]["target"]["ocr.glyph_height"])
    assert math.isnan(meta["scores"]["sources"][0]["ocr.glyph_height"])
    assert meta["scores"]["target"]["ocr.min_found_ned"] == 1.0
    assert made.meta["scores"]["target"]["ocr.glyph_height"] is None


def test_hugging_face_loads_a_score_that_is_absent_in_the_first_samples(tmp_path):
    """HF types each field from the first five samples: a score that did not apply in
    them (null) and did later failed the whole load; as NaN it loads, every value kept."""
    datasets = pytest.importorskip("datasets")
    rows = [sample(i, None if i < 6 else 0.02 * i) for i in range(12)]
    (tmp_path / "fill").mkdir()
    write_tar(tmp_path / "fill" / "fill-train-000000.tar", [sample_files(r) for r in rows])
    loaded = datasets.load_dataset(
        "webdataset", data_dir=str(tmp_path / "fill"), split="train", cache_dir=str(tmp_path / "hf")
    )
    heights = [row["json"]["scores"]["target"]["ocr.glyph_height"] for row in loaded]
    assert len(heights) == 12 and all(math.isnan(h) for h in heights[:6])
    assert heights[6:] == pytest.approx([0.02 * i for i in range(6, 12)])
