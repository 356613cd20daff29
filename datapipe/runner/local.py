"""The local runner: every stage in this process, one block of groups at a time.

It is what tests, notebooks and the quickstart use. It drives the same stage objects
and the same `RunOutput` commit sequence as the Ray runner, so both write the same
bytes, and both resume an interrupted output the same way.
"""

from __future__ import annotations

import time
from pathlib import Path

from datapipe.budget import Budget, BudgetExhaustedError
from datapipe.doctor import preflight
from datapipe.recipe import LoadedRecipe
from datapipe.runner.output import OrderedCommits, Plan, Progress, RunOutput, run_stage
from datapipe.runner.summary import RunSummary
from datapipe.stages.base import Stage
from datapipe.stages.registry import build_candidate_stages


def run_local(
    loaded: LoadedRecipe,
    out: Path,
    limit: int | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Run (or finish) a recipe end to end in this process and write everything under `out`."""
    began = time.perf_counter()
    preflight(loaded)
    output = RunOutput(out, loaded, runner="local")
    summary = RunSummary.for_recipe(loaded)
    candidate_stages: list[Stage] = []

    def render(plan: Plan, commits: OrderedCommits) -> None:
        if not candidate_stages:
            candidate_stages.extend(build_candidate_stages(loaded, out))
            for stage in candidate_stages:
                stage.setup()
        while plan.todo:
            block = next(iter(plan.todo))
            budget.check(block, plan.todo[block], summary)
            groups = plan.todo.pop(block)
            for stage in candidate_stages:
                groups = run_stage(stage, groups, summary)
            summary.add_rendered(groups)
            commits.ready(block, groups)

    budget = Budget(loaded)
    stop = None
    try:
        output.drive(limit, summary, progress, render)
    except BudgetExhaustedError as exhausted:
        stop = exhausted
    finally:
        for stage in candidate_stages:
            stage.teardown()
        output.teardown()
    summary.wall_seconds = time.perf_counter() - began
    output.finalize(summary, limit, stop)
    if stop is not None:
        stop.summary = summary
        raise stop
    return summary
