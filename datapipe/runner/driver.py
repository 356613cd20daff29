"""The one place that drives stages in this process: build them, set them up once, run
groups through them in their batch sizes with each stage's time recorded, tear them down.

The local runner (candidate stages), the commit (filter, near-duplicates, tasks, bench),
regen's top-up renders and `datapipe score` all drive stages through it; the Ray runner
drives the candidate stages as actor pools instead and reports the same timings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType

from datapipe.records import Group
from datapipe.runner.summary import RunSummary
from datapipe.stages.base import Stage


def run_stage(stage: Stage, groups: list[Group], summary: RunSummary | None) -> list[Group]:
    """Drive one stage over groups in its batch size, timing it into the summary (if any)."""
    timing = None if summary is None else summary.timing(stage.name)
    out: list[Group] = []
    for start in range(0, len(groups), stage.batch_size):
        batch = groups[start : start + stage.batch_size]
        began = time.perf_counter()
        out.extend(stage.process_batch(batch))
        if timing is not None:
            timing.add(time.perf_counter() - began, stage.items(batch))
    return out


class StageChain:
    """Stages run in order, built and set up on first use (so a run with nothing left to
    render loads no model), torn down once; usable as a context manager."""

    def __init__(self, build: Callable[[], list[Stage]]) -> None:
        self._build = build
        self._stages: list[Stage] | None = None

    @property
    def stages(self) -> list[Stage]:
        if self._stages is None:
            stages = self._build()
            for stage in stages:
                stage.setup()
            self._stages = stages
        return self._stages

    def run(self, groups: list[Group], summary: RunSummary | None = None) -> list[Group]:
        for stage in self.stages:
            groups = run_stage(stage, groups, summary)
        return groups

    def teardown(self) -> None:
        for stage in self._stages or []:
            stage.teardown()
        self._stages = None

    def __enter__(self) -> StageChain:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.teardown()
