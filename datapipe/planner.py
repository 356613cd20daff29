"""The planner: what a run renders next, and what its committed blocks have made.

Runners ask it for the next phase (`next_phase`) and commit every block of a phase
before asking again, because a round is planned from what the earlier ones made. The
output tells it each block as the block is committed (`committed`: it applies the
split's quotas and targets and returns what the block's ledger records) or, for a block
an earlier invocation committed, replays that record (`remember`). The phases:

1. the train plan: the recipe's `groups` (a `--limit` prefix of them);
2. with `targets`, train rounds, each asking per group kind for what every short task
   still needs at the pairs per group measured so far, until each target is met or
   `targets.max_rounds` rounds (the first included) are done;
3. with `bench`, bench rounds until every quota is met or given up (`BenchState`).

The state changes only with committed blocks, whose ledgers record it, and each round
depends only on that state, so a rerun or a resumed run plans the same rounds and writes
the same bytes.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from datapipe.bench import BenchState
from datapipe.libraries import LoadedRecipe
from datapipe.plan import (
    groups_to_reach,
    more_groups,
    plan_groups,
    prior_pairs_per_group,
    train_blocks,
)
from datapipe.recipe import GROUP_KINDS
from datapipe.records import Group, PairReject

OVER_TARGET = "over_target"
"""The pair rejection of a train sample made after its task's target was met."""


@dataclass(frozen=True)
class Phase:
    """Blocks to commit, in block order, before the planner is asked again."""

    split: str
    blocks: dict[int, list[Group]]
    """Block -> its groups (ids, kinds, languages, themes: not yet composed)."""


class TargetState:
    """Train pair targets: what the committed blocks made per task and group kind, and
    how many samples of each task were written (at most its target)."""

    def __init__(self, loaded: LoadedRecipe) -> None:
        assert loaded.recipe.targets is not None
        self.recipe = loaded.recipe
        self.config = loaded.recipe.targets
        self.groups: Counter[str] = Counter()
        """Train groups committed, per kind."""
        self.made: defaultdict[str, Counter[str]] = defaultdict(Counter)
        """Samples built per task and group kind (over-target ones included): the rates."""
        self.accepted: Counter[str] = Counter()
        """Samples written per task."""
        self.over: Counter[str] = Counter()
        """Samples not written per task: their target was already met."""
        self.rounds: list[dict[str, int]] = []
        """Groups asked for per kind, per round."""

    def take(self, groups: list[Group]) -> dict[str, Any]:
        """Count a committed block's groups (in order) and hold back each sample of a task
        whose target is met, as a recorded `over_target` rejection. Returns the block's
        ledger record (`remember` replays it)."""
        record: dict[str, Any] = {"groups": Counter(), "made": defaultdict(Counter)}
        record |= {"accepted": Counter(), "over": Counter()}
        for group in groups:
            record["groups"][group.kind] += 1
            written = []
            for sample in group.samples:
                task = sample.task
                record["made"][task][group.kind] += 1
                wanted = self.config.pairs.get(task)
                if wanted is None or self.accepted[task] + record["accepted"][task] < wanted:
                    record["accepted"][task] += 1
                    written.append(sample)
                    continue
                record["over"][task] += 1
                group.pair_rejects.append(
                    PairReject(
                        task,
                        sample.meta["lineage"]["target"],
                        OVER_TARGET,
                        f"target {task} already holds {wanted} samples",
                    )
                )
            group.samples = written
        record = _plain(record)
        self.remember(record)
        return record

    def remember(self, record: dict[str, Any]) -> None:
        self.groups.update(record["groups"])
        for task, kinds in record["made"].items():
            self.made[task].update(kinds)
        self.accepted.update(record["accepted"])
        self.over.update(record["over"])

    def rate(self, task: str, kind: str) -> float:
        """Samples of `task` per group of `kind`: measured once the kind has
        `min_measured` groups, else the prior (`costs.priors`). A kind measured to make
        none yet is taken to make one in its next group, so a target is never given up
        on a small count (`max_rounds` bounds what that costs)."""
        groups = self.groups[kind]
        if groups < self.config.min_measured:
            return prior_pairs_per_group(self.recipe, task, kind)
        return (self.made[task][kind] or 1) / (groups + (not self.made[task][kind]))

    def short(self) -> dict[str, int]:
        return {
            task: wanted - self.accepted[task]
            for task, wanted in self.config.pairs.items()
            if self.accepted[task] < wanted
        }

    def allocation(self) -> dict[str, int]:
        """Groups per kind for the next round; empty when every target is met or the
        rounds are spent."""
        short = self.short()
        if not short or len(self.rounds) >= self.config.max_rounds:
            return {}
        counts = groups_to_reach(self.recipe, short, self.rate)
        return {k: math.ceil(n * self.config.margin) for k, n in counts.items() if n}

    def report(self) -> dict[str, Any]:
        """run.json's account of every target: met, or how far it got and why not."""
        tasks = {}
        for task in sorted(set(self.config.pairs) | set(self.made)):
            wanted = self.config.pairs.get(task)
            row: dict[str, Any] = {
                "target": wanted,
                "written": self.accepted[task],
                "made": sum(self.made[task].values()),
                "over_target": self.over[task],
                "per_group": {
                    k: round(n / self.groups[k], 4) for k, n in sorted(self.made[task].items())
                },
            }
            if wanted is not None:
                row["status"] = "met" if self.accepted[task] >= wanted else "short"
            tasks[task] = row
        short = [t for t, row in tasks.items() if row.get("status") == "short"]
        return {
            "complete": not short,
            "rounds": [{"groups": sum(r.values()), "by_kind": r} for r in self.rounds],
            "tasks": tasks,
            "short": short,
        }


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    """Counters as sorted plain dicts without zeros: ledger JSON, the same on replay."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key == "made":
            out[key] = {t: dict(sorted(k.items())) for t, k in sorted(value.items())}
        else:
            out[key] = {k: n for k, n in sorted(value.items()) if n}
    return out


class Planner:
    """The one thing a runner asks what to render next and tells what was committed."""

    def __init__(self, loaded: LoadedRecipe, limit: int | None = None) -> None:
        self.loaded = loaded
        self.limit = limit
        recipe = loaded.recipe
        self.bench = BenchState(loaded) if recipe.bench is not None else None
        """The bench quotas; the bench stage fills them as it builds each block."""
        self.targets = TargetState(loaded) if recipe.targets is not None else None
        self.planned_groups = 0
        """Groups planned so far (for progress)."""
        self._bench_mark = self.bench.snapshot() if self.bench is not None else None
        self._phases = self._plan()

    def next_phase(self) -> Phase | None:
        """The next blocks to commit; None when the run is done. Ask again only after
        every block of the last phase is committed."""
        phase = next(self._phases, None)
        if phase is not None:
            self.planned_groups += sum(len(g) for g in phase.blocks.values())
        return phase

    def _plan(self) -> Iterator[Phase]:
        loaded = self.loaded
        blocks: dict[int, list[Group]] = {}
        planned = dict.fromkeys(GROUP_KINDS, 0)
        for slot in plan_groups(loaded, self.limit):
            blocks.setdefault(slot.block, []).append(slot.to_group())
            planned[slot.kind] += 1
        if self.targets is not None:
            self.targets.rounds.append({k: n for k, n in planned.items() if n})
        yield Phase("train", blocks)  # the runner empties each phase's blocks as it goes
        block = train_blocks(loaded)
        index = sum(loaded.recipe.groups.model_dump().values())
        # a --limit run (a pilot) renders its first groups only: later rounds planned from
        # them would not be the full run's, which would then not resume from it
        while (
            self.targets is not None
            and self.limit is None
            and (allocation := self.targets.allocation())
        ):
            self.targets.rounds.append(allocation)
            blocks = more_groups(loaded, allocation, planned, index, block)
            for kind, n in allocation.items():
                planned[kind] += n
            following = max(blocks) + 1
            yield Phase("train", blocks)
            block, index = following, index + sum(allocation.values())
        while self.bench is not None and (blocks := self.bench.next_round(block, index)):
            following, size = max(blocks) + 1, sum(len(g) for g in blocks.values())
            yield Phase("bench", blocks)
            block, index = following, index + size

    def committed(self, split: str, groups: list[Group]) -> dict[str, Any]:
        """A block built (its groups in order), about to be written: hold back the train
        samples past their targets; returns what its ledger records for the planner
        (`remember` replays it), keyed `targets` or `bench`."""
        if split == "train" and self.targets is not None:
            return {"targets": self.targets.take(groups)}
        if split == "bench" and self.bench is not None:
            now = self.bench.snapshot()
            delta = BenchState.delta(self._bench_mark, now)
            self._bench_mark = now
            return {"bench": delta}
        return {}

    def remember(self, split: str, ledger: dict[str, Any]) -> None:
        """A block an earlier invocation committed: its ledger's record, in block order."""
        if split == "train" and self.targets is not None:
            self.targets.remember(ledger.get("targets") or _EMPTY)
        if split == "bench" and self.bench is not None:
            self.bench.remember(ledger.get("bench", {}))
            self._bench_mark = self.bench.snapshot()

    def report(self) -> dict[str, Any]:
        """run.json's accounts: `targets` and `bench`, where the recipe has them."""
        out = {}
        if self.targets is not None:
            out["targets"] = self.targets.report()
        if self.bench is not None:
            out["bench"] = self.bench.report()
        return out


_EMPTY: dict[str, Any] = {"groups": {}, "made": {}, "accepted": {}, "over": {}}
