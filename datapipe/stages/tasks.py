"""TaskStage: kept candidates and their groups -> samples for the six tasks.

One render feeds every task it can: each kept poster gives extend, fill and identity
samples whatever its group kind, and rescale, layout and style groups also give their
pairs (every kept member is a target once, with the next kept member as reference,
and a rescale pair is used in both directions). A pair that cannot be made is
recorded with its reason; rejected candidates are already in the rejects table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.stages.base import Resources, Stage
from datapipe.tasks.common import TaskContext
from datapipe.tasks.registry import TASKS, TaskRow, pair_task

if TYPE_CHECKING:
    from pathlib import Path


class TaskStage(Stage):
    name = "tasks"
    resources: ClassVar[Resources] = Resources(cpus=1.0)
    batch_size: ClassVar[int] = 8

    def __init__(
        self, context: TaskContext, out: Path | None = None, only: set[str] | None = None
    ) -> None:
        """`only` restricts the builders to some tasks (regenerating one task's split)."""
        super().__init__(context, out)
        self.context = context
        self.enabled = set(context.tasks.enabled())
        if only is not None:
            self.enabled &= only

    def process_batch(self, groups: list[Group]) -> list[Group]:
        for group in groups:
            group.samples, group.pair_rejects = [], []
            kept = [c for c in group.candidates if c.kept]
            # a bench group serves the one task it was made for
            enabled = self.enabled if group.task is None else self.enabled & {group.task}
            for row in TASKS.values():
                if row.per == "poster" and row.name in enabled:
                    for candidate in kept:
                        config = row.config(self.context.tasks)
                        self._add(group, row.builder(self.context, config, group, candidate))
            row = pair_task(group.kind)
            if row is not None and row.name in enabled:
                self._pairs(group, row, kept)
        return groups

    def _pairs(self, group: Group, row: TaskRow, kept: list[Candidate]) -> None:
        task = row.name
        if len(kept) < 2:
            for candidate in kept:
                detail = (
                    f"{len(kept)} of {len(group.candidates)} group members kept; a pair needs 2"
                )
                self._add(
                    group, PairReject(task, candidate.key, f"{task}_group_incomplete", detail)
                )
            return
        config = row.config(self.context.tasks)
        for i, target in enumerate(kept):
            reference = kept[(i + 1) % len(kept)]
            self._add(group, row.pair(self.context, config, group, reference, target))

    @staticmethod
    def _add(group: Group, result: Sample | PairReject) -> None:
        if isinstance(result, Sample):
            group.samples.append(result)
        else:
            group.pair_rejects.append(result)

    def items(self, groups: list[Group]) -> int:
        return sum(1 for g in groups for c in g.candidates if c.kept)
