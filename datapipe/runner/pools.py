"""Actor pool sizes: each candidate stage's declared resources with the recipe's
`execution.stages` overrides applied. Apart from the Ray runner that uses them, so the
cost report reads a stage's GPU share without importing Ray code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from datapipe.errors import DatapipeError
from datapipe.libraries import LoadedRecipe
from datapipe.stages.base import Stage

READ_TASK_CPUS = 0.5
"""CPU kept free of actor pools so Ray Data's read and split tasks can always run."""


@dataclass(frozen=True)
class PoolSpec:
    """The resources of one stage's actor pool, after the recipe's overrides."""

    stage: type[Stage]
    cpus: float
    gpus: float
    workers: int
    resources: dict[str, float]
    batch_size: int
    pinned: bool = False
    """The recipe set this pool's CPUs: it is never resized to fit a cluster."""

    @classmethod
    def of(cls, stage: type[Stage], loaded: LoadedRecipe) -> PoolSpec:
        override = loaded.recipe.execution.stages.get(stage.name)
        declared = stage.resources
        if override is None:
            return cls(stage, declared.cpus, declared.gpus, 1, {}, stage.batch_size)
        return cls(
            stage,
            declared.cpus if override.cpus is None else override.cpus,
            declared.gpus if override.gpus is None else override.gpus,
            override.workers,
            dict(override.resources),
            override.batch_size or stage.batch_size,
            pinned=override.cpus is not None,
        )


MIN_POOL_CPUS = 0.05
"""The smallest CPU share an unpinned pool is given when pools are fitted to a cluster."""


def fit_pools(total: Mapping[str, float], pools: list[PoolSpec]) -> tuple[list[PoolSpec], str]:
    """Shrink the CPU shares of the pools the recipe did not pin, in proportion, so that all
    pools fit the cluster that is there (a laptop's 2 cores, say); pinned pools are kept as
    the recipe says, and `capacity_problems` refuses them if they do not fit. Returns the
    pools and a sentence saying what was done ("" when nothing was)."""
    free = (
        total.get("CPU", 0.0) - READ_TASK_CPUS - sum(p.cpus * p.workers for p in pools if p.pinned)
    )
    loose = [p for p in pools if not p.pinned]
    wanted = sum(p.cpus * p.workers for p in loose)
    if not loose or wanted <= free or free <= 0:
        return pools, ""
    scale = free / wanted
    fitted = [
        p if p.pinned else replace(p, cpus=max(MIN_POOL_CPUS, int(p.cpus * scale * 100) / 100))
        for p in pools
    ]
    shares = ", ".join(f"{p.stage.name} {p.cpus:g}" for p in fitted if not p.pinned)
    note = (
        f"the recipe pins no CPUs for {len(loose)} stage pools; they ask for {wanted:g} CPUs and "
        f"the cluster has {total.get('CPU', 0.0):g}, so each gets a share: {shares} CPUs "
        "(pin them in execution.stages to choose)"
    )
    return fitted, note


def capacity_problems(total: Mapping[str, float], pools: list[PoolSpec]) -> list[DatapipeError]:
    """What a cluster of `total` resources cannot hold of the pools; also run on rendered
    manifests (datapipe.manifests) before a cluster exists."""
    problems = []
    cpus = total.get("CPU", 0.0)
    wanted = sum(p.cpus * p.workers for p in pools)
    if wanted > cpus - READ_TASK_CPUS:
        detail = ", ".join(f"{p.stage.name} {p.workers}x{p.cpus:g}" for p in pools)
        problems.append(
            DatapipeError(
                f"the actor pools ask for {wanted:g} CPUs ({detail}) but the cluster has {cpus:g} "
                f"and Ray Data needs {READ_TASK_CPUS:g} free for its own tasks",
                where="execution.stages",
                fix="lower cpus or workers for some stages in the recipe's execution section",
            )
        )
    for pool in pools:
        needs = {"GPU": pool.gpus, **pool.resources} if pool.gpus else dict(pool.resources)
        for resource, amount in needs.items():
            if amount and total.get(resource, 0.0) < amount * pool.workers:
                problems.append(
                    DatapipeError(
                        f"stage {pool.stage.name} needs {amount * pool.workers:g} {resource} "
                        f"({pool.workers} workers) but the cluster offers "
                        f"{total.get(resource, 0.0):g}",
                        where=f"execution.stages.{pool.stage.name}",
                        fix="add nodes with that resource or lower workers",
                    )
                )
    # Pools start at full size, so the GPU pools together must fit (Ray would wait forever).
    gpus = sum(p.gpus * p.workers for p in pools)
    if gpus and round(gpus, 6) > total.get("GPU", 0.0):
        detail = ", ".join(f"{p.stage.name} {p.workers}x{p.gpus:g}" for p in pools if p.gpus)
        problems.append(
            DatapipeError(
                f"the GPU pools together ask for {gpus:g} GPUs ({detail}) but the cluster "
                f"offers {total.get('GPU', 0.0):g}",
                where="execution.stages",
                fix="add GPU nodes or lower gpus or workers of the GPU stages",
            )
        )
    return problems
