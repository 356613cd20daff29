"""The bench split's quotas: how far each is filled, and what to render next.

The bench is rendered in rounds. Each round asks, for every quota still short, for
its shortfall divided by the acceptance rate measured so far (the quota's own once it
has `min_measured` groups, else its task's, else the recipe's initial guess), times a
margin; a quota is given up after `max_rounds` rounds or `max_groups_per_sample` groups
per sample asked for, and then reported with the reasons its groups failed.

A quota's groups form one sequence (`BenchCell.group(n)`): the n-th group's id, specs
and seeds depend on the cell and n only, and a quota takes the first accepted groups
of its sequence. A round's plan depends only on the state after earlier rounds, which
block ledgers record, so a resumed run plans the same rounds.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from datapipe.libraries import LoadedRecipe
from datapipe.plan import BenchCell, bench_cells
from datapipe.records import Group

TOP_REASONS = 5


@dataclass
class CellState:
    groups: int = 0
    """Groups of this quota committed so far."""
    passed: int = 0
    """Groups that gave a sample passing every bench check (over quota ones included)."""
    accepted: int = 0
    """Samples in the split: at most the quota."""
    reasons: Counter[str] = field(default_factory=Counter)
    """Why groups gave no sample: the first failed check of each."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "passed": self.passed,
            "accepted": self.accepted,
            "reasons": dict(sorted(self.reasons.items())),
        }

    def add(self, data: dict[str, Any]) -> None:
        self.groups += data["groups"]
        self.passed += data["passed"]
        self.accepted += data["accepted"]
        self.reasons.update(data["reasons"])


class BenchState:
    def __init__(self, loaded: LoadedRecipe) -> None:
        self.loaded = loaded
        self.config = loaded.recipe.bench
        self.cells = bench_cells(loaded.recipe)
        self.by_key = {c.key: c for c in self.cells}
        self.states = {c.key: CellState() for c in self.cells}
        self.rounds: list[dict[str, int]] = []

    def cell(self, group: Group) -> BenchCell:
        return self.by_key[f"{group.task}/{group.language}/{group.theme}"]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {k: s.to_dict() for k, s in self.states.items()}

    @staticmethod
    def delta(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict:
        """What one block added, for its ledger (only the quotas it touched)."""
        out = {}
        for key, now in after.items():
            then = before[key]
            if now["groups"] == then["groups"]:
                continue
            reasons = Counter(now["reasons"])
            reasons.subtract(then["reasons"])
            out[key] = {
                "groups": now["groups"] - then["groups"],
                "passed": now["passed"] - then["passed"],
                "accepted": now["accepted"] - then["accepted"],
                "reasons": {r: n for r, n in sorted(reasons.items()) if n},
            }
        return out

    def remember(self, delta: dict[str, dict[str, Any]]) -> None:
        for key, data in delta.items():
            self.states[key].add(data)

    def rate(self, cell: BenchCell) -> float:
        oversample = self.config.oversample
        state = self.states[cell.key]
        if state.groups >= oversample.min_measured:
            return state.passed / state.groups
        same_task = [self.states[c.key] for c in self.cells if c.task == cell.task]
        groups = sum(s.groups for s in same_task)
        if groups >= oversample.min_measured:
            return sum(s.passed for s in same_task) / groups
        return oversample.initial_acceptance

    def ceiling(self, cell: BenchCell) -> int:
        return math.ceil(cell.quota * self.config.oversample.max_groups_per_sample)

    def allocation(self, tasks: set[str] | None = None) -> dict[str, int]:
        """Groups to render next round per short quota (of `tasks`, default all); empty
        when none can go on."""
        if len(self.rounds) >= self.config.oversample.max_rounds:
            return {}
        out = {}
        for cell in self.cells:
            if tasks is not None and cell.task not in tasks:
                continue
            state = self.states[cell.key]
            need = cell.quota - state.accepted
            room = self.ceiling(cell) - state.groups
            if need <= 0 or room <= 0:
                continue
            rate = max(self.rate(cell), 1e-3)
            out[cell.key] = min(room, math.ceil(need / rate * self.config.oversample.margin))
        return out

    def next_round(
        self, first_block: int, first_index: int, tasks: set[str] | None = None
    ) -> dict[int, list[Group]]:
        """The next round's groups by block (empty when every quota is met or given up).
        Quotas are interleaved so every block holds a mix."""
        allocation = self.allocation(tasks)
        if not allocation:
            return {}
        self.rounds.append(allocation)
        queues = {
            k: iter(range(self.states[k].groups, self.states[k].groups + n))
            for k, n in allocation.items()
        }
        block_size = self.loaded.recipe.block_size
        blocks: dict[int, list[Group]] = {}
        position = 0
        while queues:
            for key in list(queues):
                n = next(queues[key], None)
                if n is None:
                    del queues[key]
                    continue
                block = first_block + position // block_size
                group = self.by_key[key].group(
                    self.loaded.generation_hash, n, first_index + position, block
                )
                blocks.setdefault(block, []).append(group)
                position += 1
        return blocks

    def complete(self) -> bool:
        return all(self.states[c.key].accepted >= c.quota for c in self.cells)

    def report(self) -> dict[str, Any]:
        """run.json's account of every quota: filled, or why not."""
        cells = []
        for cell in self.cells:
            state = self.states[cell.key]
            row = {
                "task": cell.task,
                "language": cell.language,
                "theme": cell.theme,
                "quota": cell.quota,
                **state.to_dict(),
                "status": "met" if state.accepted >= cell.quota else "unfilled",
            }
            if state.accepted < cell.quota:
                limit = (
                    f"max_rounds ({self.config.oversample.max_rounds}) reached"
                    if state.groups < self.ceiling(cell)
                    else f"max_groups_per_sample reached ({state.groups} groups)"
                )
                top = ", ".join(f"{r} {n}" for r, n in state.reasons.most_common(TOP_REASONS))
                row["why"] = f"{state.accepted} of {cell.quota} after {state.groups} groups, " + (
                    f"{limit}; groups failed for: {top or 'no recorded reason'}"
                )
            cells.append(row)
        return {
            "complete": self.complete(),
            "rounds": [{"groups": sum(a.values()), "quotas": len(a)} for a in self.rounds],
            "quotas": cells,
            "unfilled": [c for c in cells if c["status"] != "met"],
        }
