"""Reproducible WebDataset tars: fixed mtime, owner and mode; members in sorted order.

The bytes are exactly those `webdataset.TarWriter` writes in its default (stream) mode
with these settings: per member a PAX header, the data and zero padding to 512 bytes;
at the end two zero blocks and padding to a 10 KiB record (tests check it against
TarWriter). Writing each member in one go, rather than through tarfile's 16 KiB copy
loop and record buffer, halves the time a shard takes, and writing needs neither
webdataset nor the torch it imports.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from datapipe.io.atomic import commit, temp_path

FIXED_MTIME = 1_700_000_000
"""2023-11-14: any constant works; it must never be the wall clock."""
OWNER = "datapipe"
MODE = 0o444


def write_tar(path: Path, samples: Iterable[dict[str, bytes | str]]) -> int:
    """Write samples (`__key__` plus extension -> bytes) atomically; return the tar's size."""
    commit(write_tar_aside(path, samples), path)
    return path.stat().st_size


def write_tar_aside(path: Path, samples: Iterable[dict[str, bytes | str]]) -> Path:
    """Write the tar under `path`'s temporary name and return that name; `atomic.commit`
    makes it durable and renames it, which a caller may do in the background."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with tmp.open("wb") as handle:
            _write_members(handle, 0, samples)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def append_tar(path: Path, offset: int, samples: Iterable[dict[str, bytes | str]]) -> int:
    """Write samples into the tar at `path` from `offset` (the end of its last member, over
    its end-of-archive blocks) and end it again; return the new end of members.

    In place, not atomic: the caller's ledger records `offset`, and a rerun cuts the tar
    back to it (`members_end`) before appending the same samples again. The bytes equal
    those of a tar written in one go with every sample."""
    with path.open("r+b") as handle:
        handle.seek(offset)
        end = _write_members(handle, offset, samples)
        handle.truncate()
    return end


def _write_members(handle: BinaryIO, offset: int, samples: Iterable[dict[str, bytes | str]]) -> int:
    """Members from `offset`, then the end-of-archive blocks and record padding."""
    end = offset + sum(_write_sample(handle, sample) for sample in samples)
    handle.write(tarfile.NUL * (tar_size(end) - end))
    return end


def tar_size(end: int) -> int:
    """A tar's size when its members end at `end`: end-of-archive blocks, record padding."""
    size = end + 2 * tarfile.BLOCKSIZE
    return size + (-size % tarfile.RECORDSIZE)


def sample_size(sample: dict[str, bytes | str]) -> int:
    """The bytes a sample takes in a tar (headers, data, padding), as written."""
    return sum(len(header) + len(data) + padding for header, data, padding in _members(sample))


def members_end(path: Path, keep: set[str]) -> int:
    """Where the first member of a key not in `keep` starts (or where members end)."""
    with tarfile.open(path, "r") as archive:
        for member in archive:
            if member.name.partition(".")[0] not in keep:
                return member.offset
        return archive.offset


def _members(sample: dict[str, bytes | str]) -> Iterator[tuple[bytes, bytes | str, int]]:
    """(header, data, padding) per member, in extension order."""
    key = sample.get("__key__")
    if not isinstance(key, str):
        raise ValueError(f"a sample needs a `__key__` string, got {type(key).__name__}")
    for ext in sorted(sample):
        if ext == "__key__":
            continue
        data = sample[ext]
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ValueError(f"{key}.{ext}: tar members are bytes, got {type(data).__name__}")
        info = tarfile.TarInfo(f"{key}.{ext}")
        info.size = len(data)
        info.mtime = FIXED_MTIME
        info.mode = MODE
        info.uname = info.gname = OWNER
        header = info.tobuf(tarfile.DEFAULT_FORMAT, tarfile.ENCODING, "surrogateescape")
        yield header, data, -len(data) % tarfile.BLOCKSIZE


def _write_sample(handle: BinaryIO, sample: dict[str, bytes | str]) -> int:
    """Write one sample's members in extension order; return the bytes written."""
    written = 0
    for header, data, padding in _members(sample):
        handle.write(header)
        handle.write(data)
        handle.write(tarfile.NUL * padding)
        written += len(header) + len(data) + padding
    return written


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
