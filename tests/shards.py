"""Reading a run's output back, as a user would, for the tests."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from datapipe.io.tar import read_tar
from datapipe.runner.output import LOG_FILE, RAY_LOG_FILE


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


UNTIMED = {"run.json", LOG_FILE, RAY_LOG_FILE}
"""Files that hold wall-clock times by design (run.json) or are a command's logs."""


def tree_digest(root: Path) -> dict[str, str]:
    """Every file but run.json and the run logs -> sha256."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in UNTIMED
    }
