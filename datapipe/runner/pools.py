"""Actor pool sizes: each candidate stage's declared resources with the recipe's
`execution.stages` overrides applied. Apart from the Ray runner that uses them, so the
cost report reads a stage's GPU share, and `datapipe doctor` states what a recipe needs of
a cluster, without importing Ray code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from rich.table import Table

from datapipe.errors import DatapipeError
from datapipe.libraries import LoadedRecipe
from datapipe.stages.base import Stage
from datapipe.stages.registry import candidate_stage_classes

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


def _cpu_problems(cpus: float, pools: list[PoolSpec]) -> list[DatapipeError]:
    wanted = sum(p.cpus * p.workers for p in pools)
    if wanted <= cpus - READ_TASK_CPUS:
        return []
    detail = ", ".join(f"{p.stage.name} {p.workers}x{p.cpus:g}" for p in pools)
    return [
        DatapipeError(
            f"the actor pools ask for {wanted:g} CPUs ({detail}) but the cluster has {cpus:g} "
            f"and Ray Data needs {READ_TASK_CPUS:g} free for its own tasks",
            where="execution.stages",
            fix="lower cpus or workers for some stages in the recipe's execution section",
        )
    ]


def capacity_problems(total: Mapping[str, float], pools: list[PoolSpec]) -> list[DatapipeError]:
    """What a cluster of `total` resources cannot hold of the pools; also run on rendered
    manifests (datapipe.manifests) before a cluster exists."""
    problems = _cpu_problems(total.get("CPU", 0.0), pools)
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


def recipe_pools(loaded: LoadedRecipe) -> list[PoolSpec]:
    """The candidate stages' pools as the recipe declares them, before any fitting."""
    return [PoolSpec.of(cls, loaded) for cls in candidate_stage_classes(loaded.recipe)]


@dataclass(frozen=True)
class ClusterNeeds:
    """What a recipe's `execution` section asks of a Ray cluster (`datapipe doctor`): the
    same pools and rules the Ray runner starts them with, stated before a cluster exists."""

    pools: list[PoolSpec]

    @property
    def gpus(self) -> float:
        """GPUs of every GPU pool together: pools start at full size, so all at once."""
        return round(sum(p.gpus * p.workers for p in self.pools), 6)

    @property
    def largest_gpu_share(self) -> float:
        """The largest GPU share one actor holds: a node needs one GPU with that much free."""
        return max((p.gpus for p in self.pools), default=0.0)

    @property
    def pinned_cpus(self) -> float:
        """CPUs of the pools whose CPUs the recipe set: refused when the cluster lacks them."""
        return sum(p.cpus * p.workers for p in self.pools if p.pinned)

    @property
    def sized_cpus(self) -> float:
        """CPUs the other pools ask for: shrunk in proportion to fit a smaller cluster."""
        return sum(p.cpus * p.workers for p in self.pools if not p.pinned)

    @property
    def min_cpus(self) -> float:
        """The fewest CPUs the run starts on: pinned pools whole, the others shrunk by
        `fit_pools` (to 0.01 CPU, the precision it shares them at), Ray Data's own tasks."""
        floor = (
            self.pinned_cpus
            + READ_TASK_CPUS
            + MIN_POOL_CPUS * sum(p.workers for p in self.pools if not p.pinned)
        )
        steps = int((self.full_cpus - floor) * 100) + 1
        for total in (round(floor + step / 100, 2) for step in range(steps)):
            fitted, _ = fit_pools({"CPU": total}, self.pools)
            if not _cpu_problems(total, fitted):
                return total
        return self.full_cpus

    @property
    def full_cpus(self) -> float:
        """CPUs for every pool at the share the recipe or the stage declares."""
        return round(self.pinned_cpus + self.sized_cpus + READ_TASK_CPUS, 6)

    def resources(self) -> dict[str, float]:
        """Custom Ray resources (`memory` too, where declared) summed over every worker."""
        found: dict[str, float] = {}
        for pool in self.pools:
            for name, amount in pool.resources.items():
                found[name] = found.get(name, 0.0) + amount * pool.workers
        return dict(sorted(found.items()))

    @classmethod
    def of(cls, loaded: LoadedRecipe) -> ClusterNeeds:
        return cls(recipe_pools(loaded))

    def table(self) -> Table:
        """One row per pool (`notes` says what they need together)."""
        table = Table(title="execution: what the Ray cluster must offer")
        for column in ("stage", "workers", "CPUs each", "GPUs each", "other", "CPUs are"):
            table.add_column(column, justify="left" if column in ("stage", "other") else "right")
        for p in self.pools:
            other = ", ".join(f"{name} {amount:g}" for name, amount in p.resources.items())
            sized = "pinned" if p.pinned else "sized to the cluster"
            table.add_row(p.stage.name, str(p.workers), f"{p.cpus:g}", f"{p.gpus:g}", other, sized)
        return table

    def notes(self) -> list[str]:
        """What the pools need together, in sentences (`datapipe doctor`)."""
        gpu_pools = ", ".join(
            f"{p.stage.name} {p.workers}x{p.gpus:g}" for p in self.pools if p.gpus
        )
        notes = [
            f"GPUs: {self.gpus:g} at once ({gpu_pools}), a free share of {self.largest_gpu_share:g}"
            " on one GPU for the largest actor"
            if self.gpus
            else "GPUs: none"
        ]
        pinned = [p.stage.name for p in self.pools if p.pinned]
        sized = [p.stage.name for p in self.pools if not p.pinned]
        cpus = f"CPUs: {self.full_cpus:g} for every pool at its full share"
        if pinned:
            cpus += f"; {self.pinned_cpus:g} pinned by execution.stages ({', '.join(pinned)})"
        if sized:
            cpus += (
                f"; {', '.join(sized)} ({self.sized_cpus:g}) are sized to the cluster, so the run "
                f"starts on as few as {self.min_cpus:g}"
            )
        notes.append(f"{cpus}; {READ_TASK_CPUS:g} of them kept free for Ray Data's own tasks")
        extra = self.resources()
        memory = extra.pop("memory", None)
        notes.append(
            f"memory: {memory / 2**30:g} GiB reserved (execution.stages.*.resources.memory)"
            if memory
            else "memory: none declared (Ray reserves none; set execution.stages.STAGE."
            "resources.memory, in bytes, to reserve it)"
        )
        if extra:
            notes.append("custom resources: " + ", ".join(f"{k} {v:g}" for k, v in extra.items()))
        return notes
