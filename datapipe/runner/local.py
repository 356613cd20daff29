"""The local runner: every stage in this process, one block of groups at a time.

It is what tests, notebooks and the quickstart use. It drives the same stage objects
and the same `RunOutput` commit sequence as the Ray runner, so both write the same
bytes, and both resume an interrupted output the same way.
"""

from __future__ import annotations

import time
from pathlib import Path

from datapipe.doctor import preflight
from datapipe.recipe import LoadedRecipe
from datapipe.runner.output import Progress, RunOutput, run_stage
from datapipe.runner.summary import RunSummary
from datapipe.stages.base import Stage
from datapipe.stages.registry import build_candidate_stages, build_dataset_stages


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
    plan = output.open(limit)
    summary = RunSummary()
    output.add_done(plan.done, summary)

    dataset_stages = build_dataset_stages(loaded)
    for stage in dataset_stages:
        stage.setup()
    candidate_stages: list[Stage] = []
    try:
        output.commit_stored(plan, dataset_stages, summary, progress)
        if plan.todo:
            candidate_stages = build_candidate_stages(loaded, out)
            for stage in candidate_stages:
                stage.setup()
        for block, groups in plan.todo.items():
            for stage in candidate_stages:
                groups = run_stage(stage, groups, summary)
            summary.rendered += sum(len(g.candidates) for g in groups)
            output.commit_block(block, groups, dataset_stages, summary)
            if progress:
                progress(summary, plan.total_groups)
    finally:
        for stage in (*candidate_stages, *dataset_stages):
            stage.teardown()
    summary.wall_seconds = time.perf_counter() - began
    output.finalize(summary, limit)
    return summary
