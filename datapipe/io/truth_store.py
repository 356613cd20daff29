"""The renderer's truth, stored apart from the candidates: for grading, never for building.

A renderer that drew the poster itself (the procedural one) knows where it wrote each
line, its subject mask, its layout slots and the fault it drew on purpose. None of that
may reach a stage, a task builder, a verdict or regen: a diffusion renderer knows none
of it, so a check that leaned on it would pass offline and fail on the cluster. The
render stage hands it to the runner, which writes `candidates/truth-NNNNNN.tar` (one
JSON and, where known, one mask PNG per candidate) before the block's candidate tar.
Only the fidelity benchmark, tests and inspection read it back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from datapipe.hashing import canonical_json
from datapipe.io.tar import read_tar, write_tar
from datapipe.records import TRUTH_ADAPTER, RenderTruth


@dataclass
class Graded:
    """What one render's grader gets: the renderer's truth and its own subject mask."""

    truth: RenderTruth
    mask: bytes | None
    """PNG, mode L, 255 where the renderer drew the subject."""


class TruthStore:
    def __init__(self, out: Path) -> None:
        self.root = out / "candidates"

    def path(self, block: int) -> Path:
        return self.root / f"truth-{block:06d}.tar"

    def write(self, block: int, graded: dict[str, Graded]) -> None:
        """One member per candidate key, in key order (the bytes depend on nothing else)."""
        members = []
        for key in sorted(graded):
            entry = graded[key]
            member: dict[str, bytes | str] = {
                "__key__": key,
                "json": canonical_json(asdict(entry.truth)),
            }
            if entry.mask is not None:
                member["mask.png"] = entry.mask
            members.append(member)
        write_tar(self.path(block), members)

    def load(self, block: int) -> dict[str, Graded]:
        """The block's truth by candidate key; empty when the renderer knew none."""
        path = self.path(block)
        if not path.is_file():
            return {}
        return {
            key: Graded(
                TRUTH_ADAPTER.validate_python(json.loads(files["json"])), files.get("mask.png")
            )
            for key, files in read_tar(path)
        }

    def faults(self, block: int) -> dict[str, str]:
        """Candidate key -> the fault the renderer drew ("good" for none)."""
        return {key: entry.truth.fault for key, entry in self.load(block).items()}

    def blocks(self) -> list[int]:
        """The blocks whose truth is stored, in order."""
        return sorted(
            int(p.name[len("truth-") : -len(".tar")]) for p in self.root.glob("truth-*.tar")
        )

    def all_faults(self) -> dict[str, str]:
        """Candidate key -> fault, every stored block."""
        return {key: kind for block in self.blocks() for key, kind in self.faults(block).items()}
