"""The local runner: every stage in this process, one block of groups at a time.

It is what tests, notebooks and the quickstart use. It drives the same stage objects
and the same `RunOutput` commit sequence as the Ray runner, so both write the same
bytes, and both resume an interrupted output the same way.
"""

from __future__ import annotations

import time
from pathlib import Path

from datapipe.doctor import preflight
from datapipe.libraries import LoadedRecipe
from datapipe.planner import Planner
from datapipe.runner.budget import Budget
from datapipe.runner.driver import StageChain, run_stage
from datapipe.runner.output import OrderedCommits, Plan, Progress, RunOutput, drive
from datapipe.runner.summary import RunSummary
from datapipe.stages.registry import build_candidate_stages
from datapipe.stages.render import RenderStage


def run_local(
    loaded: LoadedRecipe,
    out: Path,
    limit: int | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Run (or finish) a recipe end to end in this process and write everything under `out`."""
    began = time.perf_counter()
    preflight(loaded)
    output = RunOutput(out, loaded, runner="local", planner=Planner(loaded, limit))
    summary = RunSummary.for_recipe(loaded)
    candidate_stages = StageChain(lambda: build_candidate_stages(loaded, out))

    def render(plan: Plan, commits: OrderedCommits) -> None:
        while plan.todo:
            block = next(iter(plan.todo))
            budget.check(block, plan.todo[block], summary)
            groups = plan.todo.pop(block)
            graded = {}
            for stage in candidate_stages.stages:
                groups = run_stage(stage, groups, summary)
                if isinstance(stage, RenderStage):  # the renderer's truth goes apart at once
                    graded = stage.take_truth(groups)
            summary.add_rendered(groups)
            commits.ready(block, groups, graded)

    budget = Budget(loaded)
    try:
        drive(output, limit, summary, progress, render)
    finally:
        candidate_stages.teardown()
        output.teardown()
    summary.wall_seconds = time.perf_counter() - began
    output.finalize(summary, limit)
    return summary
