"""Reproducible WebDataset tars: fixed mtime, owner and mode; members in sorted order."""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import webdataset as wds

from datapipe.io.atomic import atomic_path

FIXED_MTIME = 1_700_000_000
"""2023-11-14: any constant works; it must never be the wall clock."""


def write_tar(path: Path, samples: Iterable[dict[str, bytes | str]]) -> int:
    """Write samples (`__key__` plus extension -> bytes) atomically; return the tar's size."""
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        writer = wds.TarWriter(
            handle,
            user="datapipe",
            group="datapipe",
            mode=0o444,
            mtime=FIXED_MTIME,
            encoder=False,
        )
        try:
            for sample in samples:
                writer.write(sample)
        except BaseException:
            # Collected later, the tar stream would flush into the closed file and print a
            # second, misleading error: mark it closed (the temporary file is dropped).
            writer.tarstream.fileobj.closed = True
            writer.tarstream.closed = True
            raise
        writer.close()
    return path.stat().st_size


def read_tar(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) in file order; a key is the member name up to its first dot."""
    current_key, current = None, {}
    with tarfile.open(path, "r") as archive:
        for member in archive:
            if not member.isfile():
                continue
            key, _, ext = member.name.partition(".")
            if key != current_key and current_key is not None:
                yield current_key, current
                current = {}
            current_key = key
            handle = archive.extractfile(member)
            current[ext] = handle.read() if handle else b""
    if current_key is not None:
        yield current_key, current
