"""NearDuplicateStage: a render that repeats an earlier kept render of another group is
rejected (`near_duplicate`, or `near_duplicate_of_train` for a bench render that repeats
a train one); the first one stays.

"Earlier" is commit order, which is block order in every runner, so the verdict is the
same however workers finish. Two renders are near-duplicates when their 64-bit pHashes
differ in at most the recipe's distance. Members of one group are never compared (a
rescale pair is the same poster twice on purpose). The index of kept hashes is rebuilt
on resume from the block ledgers, which list every kept render's hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, ClassVar

from datapipe.records import Group
from datapipe.stages.base import Resources, Stage

if TYPE_CHECKING:
    from pathlib import Path

REASON = "near_duplicate"
REASON_TRAIN = "near_duplicate_of_train"


@dataclass
class PhashIndex:
    """Kept hashes, searchable within a Hamming distance by multi-index hashing: split
    into `max_distance + 1` chunks, two hashes that close agree exactly on at least one
    chunk (pigeonhole), so a lookup only compares the entries sharing a chunk."""

    max_distance: int
    entries: list[tuple[int, str, str]] = field(default_factory=list)
    """(hash, candidate key, group id), in the order they were kept."""
    _tables: list[dict[int, list[int]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = self.max_distance + 1
        edges = [round(64 * i / parts) for i in range(parts + 1)]
        self._chunks = [(lo, hi) for lo, hi in pairwise(edges) if hi > lo]
        self._tables = [{} for _ in self._chunks]

    def _keys(self, value: int) -> list[int]:
        return [(value >> lo) & ((1 << (hi - lo)) - 1) for lo, hi in self._chunks]

    def add(self, value: int, key: str, group_id: str) -> None:
        position = len(self.entries)
        self.entries.append((value, key, group_id))
        for table, chunk in zip(self._tables, self._keys(value), strict=True):
            table.setdefault(chunk, []).append(position)

    def find(self, value: int, group_id: str, distance: int) -> tuple[str, int] | None:
        """The earliest kept render of another group within `distance`, and how far."""
        if distance > self.max_distance:
            raise ValueError(f"index built for distance {self.max_distance}, asked {distance}")
        best: tuple[int, str, int] | None = None
        for table, chunk in zip(self._tables, self._keys(value), strict=True):
            for position in table.get(chunk, ()):
                other, key, other_group = self.entries[position]
                if other_group == group_id or (best is not None and position >= best[0]):
                    continue
                d = (value ^ other).bit_count()
                if d <= distance:
                    best = (position, key, d)
        return None if best is None else (best[1], best[2])


class NearDuplicates:
    """The kept hashes of both splits of one output, shared by their stages."""

    def __init__(self, distance: dict[str, int | None]) -> None:
        """`distance`: per split, the largest pHash distance that makes a near-duplicate
        (None: the split does not check)."""
        self.distance = distance
        largest = max((d for d in self.distance.values() if d is not None), default=0)
        self.index = {s: PhashIndex(largest) for s in ("train", "bench")}

    def remember(self, split: str, kept: list[list[str]]) -> None:
        """Hashes of a block committed by an earlier run: (key, group id, hex hash) rows."""
        for key, group_id, value in kept:
            self.index[split].add(int(value, 16), key, group_id)

    def check(self, split: str, value: int, group_id: str) -> tuple[str, str] | None:
        """(reason, detail) when this hash repeats an earlier kept render."""
        distance = self.distance[split]
        if distance is None:
            return None
        searched = [(split, REASON)] + ([("train", REASON_TRAIN)] if split == "bench" else [])
        for other_split, reason in searched:
            match = self.index[other_split].find(value, group_id, distance)
            if match is not None:
                key, d = match
                return reason, f"pHash distance {d} <= {distance} to {key} ({other_split})"
        return None


class NearDuplicateStage(Stage):
    name = "near_duplicates"
    resources: ClassVar[Resources] = Resources(cpus=0.25)
    batch_size: ClassVar[int] = 64

    def __init__(self, seen: NearDuplicates, out: Path | None = None, split: str = "train") -> None:
        """`seen`: the kept hashes of both splits of the output, shared by their stages,
        with the split's distance."""
        super().__init__(seen, out)
        self.split = split
        self.seen = seen

    def process_batch(self, groups: list[Group]) -> list[Group]:
        for group in groups:
            kept = [c for c in group.candidates if c.kept and c.details.get("phash")]
            for candidate in kept:
                found = self.seen.check(
                    self.split, int(candidate.details["phash"], 16), group.group_id
                )
                if found is not None and candidate.verdict is not None:
                    reason, detail = found
                    candidate.verdict.keep = False
                    candidate.verdict.reasons.append(reason)
                    candidate.verdict.details[reason] = detail
            for candidate in kept:
                if candidate.kept:
                    self.seen.index[self.split].add(
                        int(candidate.details["phash"], 16), candidate.key, group.group_id
                    )
        return groups

    def items(self, groups: list[Group]) -> int:
        return sum(len(g.candidates) for g in groups)


def kept_hashes(groups: list[Group]) -> list[list[str]]:
    """What a block's ledger records for `NearDuplicates.remember`."""
    return [
        [c.key, g.group_id, c.details["phash"]]
        for g in groups
        for c in g.candidates
        if c.kept and c.details.get("phash")
    ]
