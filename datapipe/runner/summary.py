"""What a run did, counted as it happened: the summary table and run.json's numbers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from datapipe.records import Group


@dataclass
class StageTiming:
    items: int = 0
    batches: int = 0
    seconds: float = 0.0


@dataclass
class RunSummary:
    groups: int = 0
    blocks: int = 0
    renders: int = 0
    kept: int = 0
    rejected: int = 0
    reject_reasons: Counter[str] = field(default_factory=Counter)
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)
    pair_reject_reasons: Counter[str] = field(default_factory=Counter)
    stages: dict[str, StageTiming] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def add_groups(self, groups: list[Group]) -> None:
        for group in groups:
            self.groups += 1
            for candidate in group.candidates:
                self.renders += 1
                if candidate.kept:
                    self.kept += 1
                else:
                    self.rejected += 1
                    reasons = candidate.verdict.reasons if candidate.verdict else ["no_verdict"]
                    self.reject_reasons.update(reasons)
            self.pairs.update((s.task, s.language) for s in group.samples)
            self.pair_reject_reasons.update(r.reason for r in group.pair_rejects)

    def timing(self, stage: str) -> StageTiming:
        return self.stages.setdefault(stage, StageTiming())

    def pairs_by_task(self) -> dict[str, int]:
        out: Counter[str] = Counter()
        for (task, _), n in self.pairs.items():
            out[task] += n
        return dict(sorted(out.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "blocks": self.blocks,
            "renders": self.renders,
            "kept": self.kept,
            "rejected": self.rejected,
            "reject_reasons": dict(sorted(self.reject_reasons.items())),
            "pairs": sum(self.pairs.values()),
            "pairs_per_render": round(sum(self.pairs.values()) / self.renders, 3)
            if self.renders
            else 0.0,
            "pairs_by_task": self.pairs_by_task(),
            "pairs_by_task_language": {
                f"{task}/{lang}": n for (task, lang), n in sorted(self.pairs.items())
            },
            "pair_reject_reasons": dict(sorted(self.pair_reject_reasons.items())),
            "stages": {
                name: {
                    "items": t.items,
                    "batches": t.batches,
                    "seconds": round(t.seconds, 3),
                    "seconds_per_item": round(t.seconds / t.items, 5) if t.items else None,
                }
                for name, t in self.stages.items()
            },
            "wall_seconds": round(self.wall_seconds, 2),
        }

    def tables(self) -> list[Table]:
        counts = Table(title="run", show_header=False)
        counts.add_row("groups", str(self.groups))
        counts.add_row("renders", str(self.renders))
        kept_share = f" ({self.kept / self.renders:.0%})" if self.renders else ""
        counts.add_row("kept", f"{self.kept}{kept_share}")
        counts.add_row("rejected", str(self.rejected))
        for reason, n in sorted(self.reject_reasons.items()):
            counts.add_row(f"  rejected: {reason}", str(n))
        for reason, n in sorted(self.pair_reject_reasons.items()):
            counts.add_row(f"  pair not made: {reason}", str(n))
        counts.add_row("pairs", str(sum(self.pairs.values())))

        languages = sorted({lang for _, lang in self.pairs})
        pairs = Table(title="pairs by task")
        pairs.add_column("task")
        for lang in languages:
            pairs.add_column(lang, justify="right")
        pairs.add_column("total", justify="right")
        for task, total in self.pairs_by_task().items():
            pairs.add_row(task, *(str(self.pairs[(task, lang)]) for lang in languages), str(total))

        stages = Table(title="seconds per stage")
        for column in ("stage", "items", "seconds", "ms/item"):
            stages.add_column(column, justify="left" if column == "stage" else "right")
        for name, t in self.stages.items():
            per = f"{1000 * t.seconds / t.items:.1f}" if t.items else "-"
            stages.add_row(name, str(t.items), f"{t.seconds:.1f}", per)
        return [counts, pairs, stages]
