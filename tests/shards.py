"""Reading a run's output back, as a user would, for the tests."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from datapipe.io.tar import read_tar


def tars(out: Path, split: str = "train") -> list[Path]:
    return sorted((out / "datasets" / split).glob("*/*.tar"))


def samples(out: Path, task: str | None = None) -> Iterator[tuple[str, dict[str, bytes]]]:
    for tar in tars(out):
        if task is None or tar.parent.name == task:
            yield from read_tar(tar)


def array(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def meta(files: dict[str, bytes]) -> dict:
    return json.loads(files["json"])
