"""Actor pool sizes: each candidate stage's declared resources with the recipe's
`execution.stages` overrides applied. Apart from the Ray runner that uses them, so the
cost report reads a stage's GPU share without importing Ray code.
"""

from __future__ import annotations

from dataclasses import dataclass

from datapipe.libraries import LoadedRecipe
from datapipe.stages.base import Stage


@dataclass(frozen=True)
class PoolSpec:
    """The resources of one stage's actor pool, after the recipe's overrides."""

    stage: type[Stage]
    cpus: float
    gpus: float
    workers: int
    resources: dict[str, float]
    batch_size: int

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
        )
