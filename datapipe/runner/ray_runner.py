"""The Ray runner: candidate stages as Ray Data actor pools, commits on the driver.

Each candidate stage (prompt, render, annotators) becomes a `map_batches` over a
callable-class actor pool whose CPUs, GPUs, custom resources and size come from the
stage's declared `resources`, overridden per stage by the recipe's `execution.stages`.
Pools have a fixed size, so GPU pools start at full size. Groups stream back to the
driver in any order; the driver buffers them by block and commits a block (candidate
store, filter, tasks, shards, ledger) through the same `RunOutput` as the local
runner, in group order, so both runners write the same bytes.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from datapipe.doctor import preflight
from datapipe.errors import MissingDependencyError
from datapipe.io.truth_store import Graded
from datapipe.libraries import LoadedRecipe
from datapipe.planner import Planner
from datapipe.records import Group
from datapipe.runner.budget import Budget
from datapipe.runner.output import OrderedCommits, Plan, Progress, RunOutput, drive
from datapipe.runner.pools import PoolSpec, capacity_problems, fit_pools, recipe_pools
from datapipe.runner.summary import RunSummary
from datapipe.stages.base import Stage
from datapipe.stages.registry import stage_settings
from datapipe.stages.render import RenderStage

log = logging.getLogger(__name__)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(
            "the Ray runner needs Ray Data", fix="pip install 'datapipe[ray]'"
        ) from None
    return ray


class StageActor:
    """One worker of a stage's pool: builds and sets up the stage once, then maps batches."""

    def __init__(self, stage_class: type[Stage], settings: Any, out: Path) -> None:
        self.stage = stage_class(settings, out)
        self.stage.setup()
        self.node = _node_id()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        groups = [pickle.loads(payload) for payload in batch["payload"]]
        wall = time.time()
        began = time.perf_counter()
        groups = self.stage.process_batch(groups)
        seconds = time.perf_counter() - began
        n = len(groups)
        name = self.stage.name
        extra = {}
        if isinstance(self.stage, RenderStage):
            # the renderer's truth rides in its own column, which no later stage is given
            extra["graded"] = np.array(
                [pickle.dumps(self.stage.take_truth([g])) for g in groups], dtype=object
            )
        return {
            **batch,
            **extra,
            "payload": np.array([pickle.dumps(g) for g in groups], dtype=object),
            f"t_{name}": np.full(n, seconds / max(n, 1)),
            f"w_{name}": np.full(n, wall),
            f"e_{name}": np.full(n, wall + seconds),
            f"n_{name}": np.array([self.stage.items([g]) for g in groups]),
            f"node_{name}": np.array([self.node] * n, dtype=object),
        }


def stage_actor(stage: type[Stage]) -> type[StageActor]:
    """A StageActor named after its stage, so a worker's process title (and Ray's
    dashboard) says which stage it runs: `ray::MapWorker(MapBatches(OcrStageActor))`."""
    return type(f"{stage.__name__}Actor", (StageActor,), {})


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id()


def check_capacity(ray: Any, pools: list[PoolSpec]) -> None:
    """Refuse pools that would starve Ray Data's own tasks (a known deadlock), with the fix."""
    problems = capacity_problems(ray.cluster_resources(), pools)
    if problems:
        raise problems[0]


def build_dataset(
    ray: Any, loaded: LoadedRecipe, out: Path, groups: list[Group], pools: list[PoolSpec]
) -> Any:
    items = [{"index": g.index, "payload": pickle.dumps(g)} for g in groups]
    # One Ray block per group: an actor pool hands out whole blocks, so fewer blocks than
    # workers would leave workers (GPUs) idle.
    dataset = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    for pool in pools:
        options: dict[str, Any] = {"num_cpus": pool.cpus}
        if pool.gpus:
            options["num_gpus"] = pool.gpus
        if pool.resources:
            options["resources"] = pool.resources
        dataset = dataset.map_batches(
            stage_actor(pool.stage),
            fn_constructor_args=(pool.stage, stage_settings(pool.stage, loaded), out),
            batch_size=pool.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=pool.workers),
            **options,
        )
    return dataset


def run_ray(
    loaded: LoadedRecipe,
    out: Path,
    limit: int | None = None,
    address: str | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Run (or finish) a recipe on Ray; `address` (or RAY_ADDRESS) joins an existing cluster."""
    ray = import_ray()
    preflight(loaded)
    began = time.perf_counter()
    output = RunOutput(out.resolve(), loaded, runner="ray", planner=Planner(loaded, limit))
    summary = RunSummary.for_recipe(loaded)
    pools: list[PoolSpec] = []

    def render(plan: Plan, commits: OrderedCommits) -> None:
        if not pools:
            if not ray.is_initialized():
                ray.init(address=address or os.environ.get("RAY_ADDRESS"), log_to_driver=False)
            declared = recipe_pools(loaded)
            fitted, note = fit_pools(ray.cluster_resources(), declared)
            if note:
                log.info(note)
            pools.extend(fitted)
            check_capacity(ray, pools)
            for pool in pools:
                summary.timing(pool.stage.name).workers = pool.workers
        render_phase(ray, output, plan, pools, summary, commits)

    try:
        drive(output, limit, summary, progress, render)
    finally:
        output.teardown()
    summary.wall_seconds = time.perf_counter() - began
    output.finalize(summary, limit)
    return summary


def render_phase(
    ray: Any,
    output: RunOutput,
    plan: Plan,
    pools: list[PoolSpec],
    summary: RunSummary,
    commits: OrderedCommits,
) -> None:
    """Stream a phase's blocks through the actor pools, a window at a time; hand each
    block on when whole."""
    expected = {block: len(gs) for block, gs in plan.todo.items()}
    pending: dict[int, list[Group]] = {}
    graded: dict[int, dict[str, Graded]] = {}
    budget = Budget(output.loaded)

    def render(window: list[Group]) -> None:
        dataset = build_dataset(ray, output.loaded, output.out, window, pools)
        window.clear()  # the dataset holds them now, pickled
        for row in dataset.iter_rows():
            group: Group = pickle.loads(row["payload"])
            for pool in pools:
                timing = summary.timing(pool.stage.name)
                name = pool.stage.name
                timing.add(float(row[f"t_{name}"]), int(row[f"n_{name}"]), batches=0)
                timing.nodes.add(str(row[f"node_{pool.stage.name}"]))
                timing.observe_span(
                    float(row[f"w_{pool.stage.name}"]), float(row[f"e_{pool.stage.name}"])
                )
            summary.add_rendered([group])
            pending.setdefault(group.block, []).append(group)
            graded.setdefault(group.block, {}).update(pickle.loads(row["graded"]))
            if len(pending[group.block]) == expected[group.block]:
                commits.ready(group.block, pending.pop(group.block), graded.pop(group.block))

    for window in windows(plan.todo, output.loaded.recipe.execution.window_groups):
        while window:  # a part over budget is checked again after the part that fits
            fit, window = budget.split(window, summary)
            render(fit)


def windows(todo: dict[int, list[Group]], size: int | None) -> Iterator[list[Group]]:
    """A phase's groups, taken out of `todo` in block order, in windows of whole blocks of
    at least `size` groups (the last one smaller); one window when `size` is None."""
    window: list[Group] = []
    for block in list(todo):
        window.extend(todo.pop(block))
        if size is not None and len(window) >= size:
            yield window
            window = []
    if window:
        yield window
