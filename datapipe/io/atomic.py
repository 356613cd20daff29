"""Write-then-rename, so a reader never sees half a file and a crash leaves no partial output.

Temporary files end in `.tmp`; `datapipe verify` reports any it finds.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it into place only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temp_path(path: Path) -> Path:
    return path.with_name(path.name + TMP_SUFFIX)


def commit(tmp: Path, path: Path) -> None:
    """Make a finished temporary file durable, then rename it into place."""
    with tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    tmp.replace(path)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
