"""What a run did: counts of the output (mergeable per block) and this invocation's timings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.table import Table

from datapipe.records import Group
from datapipe.runner.cost import ApiUsage, CostBasis, add_api_usage, cost_report

if TYPE_CHECKING:
    from datapipe.libraries import LoadedRecipe


@dataclass
class RunCounts:
    """What a set of blocks holds; a block's counts are stored in its ledger and summed."""

    groups: int = 0
    renders: int = 0
    kept: int = 0
    rejected: int = 0
    reject_reasons: Counter[str] = field(default_factory=Counter)
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Train samples by (task, language)."""
    bench_pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Bench samples by (task, language)."""
    pair_reject_reasons: Counter[str] = field(default_factory=Counter)
    truncated_inputs: Counter[str] = field(default_factory=Counter)
    """Renders whose text a model cut to fit its context, by stage (`<stage>.text_truncated`)."""
    regen_reject_reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Renders the filter kept that a regen's stricter thresholds reject for the one
    split/task it rebuilt (other tasks still use them), by (`split/task`, reason)."""

    def add_groups(self, groups: list[Group]) -> None:
        for group in groups:
            self.groups += 1
            for candidate in group.candidates:
                self.renders += 1
                self.truncated_inputs.update(
                    name.split(".")[0]
                    for name, value in candidate.scores.items()
                    if name.endswith(".text_truncated") and value
                )
                if candidate.kept:
                    self.kept += 1
                else:
                    self.rejected += 1
                    reasons = candidate.verdict.reasons if candidate.verdict else ["no_verdict"]
                    self.reject_reasons.update(reasons)
            counter = self.bench_pairs if group.split == "bench" else self.pairs
            counter.update((s.task, s.language) for s in group.samples)
            self.pair_reject_reasons.update(r.reason for r in group.pair_rejects)

    def merge(self, other: RunCounts) -> None:
        self.groups += other.groups
        self.renders += other.renders
        self.kept += other.kept
        self.rejected += other.rejected
        self.reject_reasons.update(other.reject_reasons)
        self.pairs.update(other.pairs)
        self.bench_pairs.update(other.bench_pairs)
        self.pair_reject_reasons.update(other.pair_reject_reasons)
        self.truncated_inputs.update(other.truncated_inputs)
        self.regen_reject_reasons.update(other.regen_reject_reasons)

    def apply_regeneration(self, record: dict[str, Any]) -> None:
        """Counts as they stand after a `datapipe regen` (its record in run.json): the
        rebuilt task's samples are the ones now on disk, its pair rejects the ones regen
        recorded. Ledgers keep what their block committed, so a rerun sums them and
        applies every regen in order. A record from before regen kept counts is skipped."""
        if "pairs_by_language" not in record:
            return
        split, task = record["split"], record["task"]
        pairs = self.bench_pairs if split == "bench" else self.pairs
        for key in [k for k in pairs if k[0] == task]:
            del pairs[key]
        pairs.update({(task, lang): n for lang, n in record["pairs_by_language"].items()})
        self.pair_reject_reasons.subtract(record["replaced_pair_reject_reasons"])
        self.pair_reject_reasons.update(record["pair_reject_reasons"])
        self.pair_reject_reasons = +self.pair_reject_reasons
        where = f"{split}/{task}"
        for key in [k for k in self.regen_reject_reasons if k[0] == where]:
            del self.regen_reject_reasons[key]
        self.regen_reject_reasons.update(
            {(where, reason): n for reason, n in record["filter_reject_reasons"].items()}
        )

    def pairs_by_task(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (task, _), n in self.pairs.items():
            out[task] += n
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        total_pairs = sum(self.pairs.values())
        return {
            "groups": self.groups,
            "renders": self.renders,
            "kept": self.kept,
            "rejected": self.rejected,
            "reject_reasons": dict(sorted(self.reject_reasons.items())),
            "pairs": total_pairs,
            "pairs_per_render": round(total_pairs / self.renders, 3) if self.renders else 0.0,
            "pairs_by_task": self.pairs_by_task(),
            "pairs_by_task_language": {
                f"{task}/{lang}": n for (task, lang), n in sorted(self.pairs.items())
            },
            "pair_reject_reasons": dict(sorted(self.pair_reject_reasons.items())),
            "truncated_inputs": dict(sorted(self.truncated_inputs.items())),
            "regen_reject_reasons": {
                f"{where}/{reason}": n
                for (where, reason), n in sorted(self.regen_reject_reasons.items())
            },
            "bench_pairs": sum(self.bench_pairs.values()),
            "bench_pairs_by_task_language": {
                f"{task}/{lang}": n for (task, lang), n in sorted(self.bench_pairs.items())
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunCounts:
        def by_task_language(table: dict[str, int]) -> Counter[tuple[str, str]]:
            return Counter({tuple(name.split("/")): n for name, n in table.items()})

        pairs = by_task_language(data["pairs_by_task_language"])
        return cls(
            groups=data["groups"],
            renders=data["renders"],
            kept=data["kept"],
            rejected=data["rejected"],
            reject_reasons=Counter(data["reject_reasons"]),
            pairs=pairs,
            bench_pairs=by_task_language(data.get("bench_pairs_by_task_language", {})),
            pair_reject_reasons=Counter(data["pair_reject_reasons"]),
            truncated_inputs=Counter(data.get("truncated_inputs", {})),
            regen_reject_reasons=Counter(
                {
                    tuple(name.rsplit("/", 1)): n
                    for name, n in data.get("regen_reject_reasons", {}).items()
                }
            ),
        )


@dataclass
class StageTiming:
    items: int = 0
    batches: int = 0
    seconds: float = 0.0
    """Busy time summed over the stage's workers."""
    workers: int = 1
    nodes: set[str] = field(default_factory=set)
    first_start: float | None = None
    last_end: float | None = None
    """Wall-clock span from the first batch's start to the last batch's end (Ray runner)."""

    def add(self, seconds: float, items: int, batches: int = 1) -> None:
        """One more stretch of work: busy seconds, items done, batches run."""
        self.seconds += seconds
        self.items += items
        self.batches += batches

    def observe_span(self, start: float, end: float) -> None:
        self.first_start = start if self.first_start is None else min(self.first_start, start)
        self.last_end = end if self.last_end is None else max(self.last_end, end)

    @property
    def span_seconds(self) -> float | None:
        if self.first_start is None or self.last_end is None:
            return None
        return self.last_end - self.first_start


@dataclass
class RunSummary(RunCounts):
    """The whole output's counts plus what this invocation did and how long it took."""

    blocks: int = 0
    blocks_skipped: int = 0
    """Blocks a previous run had finished: read from their ledgers, not redone."""
    groups_skipped: int = 0
    blocks_from_store: int = 0
    """Blocks whose renders were in the candidate store: filtered and built without rendering."""
    rendered: int = 0
    """Renders made by this invocation (0 for a rerun of a finished output)."""
    stages: dict[str, StageTiming] = field(default_factory=dict)
    wall_seconds: float = 0.0
    api: dict[str, ApiUsage] = field(default_factory=dict)
    """API calls and tokens this invocation paid, per stage."""
    cost_basis: CostBasis = field(default_factory=CostBasis)
    """The recipe's prices and GPU shares, for the cost report."""

    @classmethod
    def for_recipe(cls, loaded: LoadedRecipe) -> RunSummary:
        return cls(cost_basis=CostBasis.of(loaded))

    def timing(self, stage: str) -> StageTiming:
        return self.stages.setdefault(stage, StageTiming())

    def add_rendered(self, groups: list[Group]) -> None:
        """Count groups that went through the candidate stages in this invocation."""
        self.rendered += sum(len(g.candidates) for g in groups)
        add_api_usage(self.api, groups)

    def to_dict(self) -> dict[str, Any]:
        wall = self.wall_seconds
        stages = {}
        for name, t in self.stages.items():
            capacity = t.workers * wall
            stages[name] = {
                "items": t.items,
                "batches": t.batches,
                "workers": t.workers,
                "busy_seconds": round(t.seconds, 3),
                "idle_seconds": round(max(0.0, capacity - t.seconds), 3),
                "seconds_per_item": round(t.seconds / t.items, 5) if t.items else None,
                "nodes": sorted(t.nodes),
                "span_seconds": round(t.span_seconds, 3) if t.span_seconds else None,
                "duty": round(t.seconds / (t.workers * t.span_seconds), 4)
                if t.span_seconds
                else None,
            }
        return {
            **super().to_dict(),
            "blocks": self.blocks,
            "blocks_skipped": self.blocks_skipped,
            "blocks_from_store": self.blocks_from_store,
            "rendered_this_run": self.rendered,
            "stages": stages,
            "wall_seconds": round(wall, 2),
            "cost": cost_report(self, self.cost_basis).to_dict(),
        }

    def tables(self) -> list[Table]:
        counts = Table(title="run", show_header=False)
        counts.add_row("groups", str(self.groups))
        counts.add_row("renders", str(self.renders))
        if self.blocks_skipped or self.blocks_from_store:
            counts.add_row("  rendered by this run", str(self.rendered))
            counts.add_row("  blocks already done", str(self.blocks_skipped))
            counts.add_row("  blocks rebuilt from the store", str(self.blocks_from_store))
        kept_share = f" ({self.kept / self.renders:.0%})" if self.renders else ""
        counts.add_row("kept", f"{self.kept}{kept_share}")
        counts.add_row("rejected", str(self.rejected))
        for reason, n in sorted(self.reject_reasons.items()):
            counts.add_row(f"  rejected: {reason}", str(n))
        for reason, n in sorted(self.pair_reject_reasons.items()):
            counts.add_row(f"  pair not made: {reason}", str(n))
        for (where, reason), n in sorted(self.regen_reject_reasons.items()):
            counts.add_row(f"  rejected for {where} by regen: {reason}", str(n))
        counts.add_row("pairs", str(sum(self.pairs.values())))
        if sum(self.reject_reasons.values()) > self.rejected:
            counts.caption = "a render can fail several rules: the reasons add up to more"

        pairs = by_task_table("pairs by task", self.pairs)
        if self.bench_pairs:
            counts.add_row("bench samples", str(sum(self.bench_pairs.values())))

        stages = Table(title="seconds per stage")
        for column in ("stage", "items", "busy s", "idle s", "ms/item"):
            stages.add_column(column, justify="left" if column == "stage" else "right")
        for name, t in self.stages.items():
            per = f"{1000 * t.seconds / t.items:.1f}" if t.items else "-"
            idle = max(0.0, t.workers * self.wall_seconds - t.seconds)
            stages.add_row(name, str(t.items), f"{t.seconds:.1f}", f"{idle:.1f}", per)
        bench = (
            [by_task_table("bench samples by task", self.bench_pairs)] if self.bench_pairs else []
        )
        return [counts, pairs, *bench, stages, cost_report(self, self.cost_basis).table()]


def by_task_table(title: str, pairs: Counter[tuple[str, str]]) -> Table:
    languages = sorted({lang for _, lang in pairs})
    table = Table(title=title)
    table.add_column("task")
    for lang in languages:
        table.add_column(lang, justify="right")
    table.add_column("total", justify="right")
    for task in sorted({task for task, _ in pairs}):
        row = [pairs[(task, lang)] for lang in languages]
        table.add_row(task, *map(str, row), str(sum(row)))
    return table
