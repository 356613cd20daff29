"""Budgets: a run stops before the block that would pass a cap, not in the middle of one.

A cap covers the whole output (every invocation that built it), so a rerun with a larger
cap resumes where the last one stopped and the finished output is the same bytes as an
uncapped run: blocks are committed whole, in order, and nothing about a block depends
on when it was rendered. Renders are counted exactly; device time, USD and API calls
per render are this invocation's measured figures (the cost report's), or the recipe's
`costs.priors` before this invocation has rendered anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datapipe.errors import DatapipeError
from datapipe.libraries import LoadedRecipe
from datapipe.plan import renders_per_group
from datapipe.recipe import BudgetConfig
from datapipe.runner.cost import RENDER, cost_report

if TYPE_CHECKING:
    from datapipe.records import Group
    from datapipe.runner.summary import RunSummary

BUDGET_STOPPED = 4
"""`datapipe run`'s exit status when a budget cap stopped it (rerun with a larger cap)."""


@dataclass(frozen=True)
class Spend:
    renders: float = 0.0
    gpu_hours: float = 0.0
    usd: float = 0.0
    api_calls: float = 0.0

    def plus(self, other: Spend) -> Spend:
        return Spend(
            self.renders + other.renders,
            self.gpu_hours + other.gpu_hours,
            self.usd + other.usd,
            self.api_calls + other.api_calls,
        )

    def times(self, n: float) -> Spend:
        return Spend(self.renders * n, self.gpu_hours * n, self.usd * n, self.api_calls * n)

    def to_dict(self) -> dict[str, float]:
        return {
            "renders": round(self.renders),
            "gpu_hours": round(self.gpu_hours, 4),
            "usd": round(self.usd, 4),
            "api_calls": round(self.api_calls),
        }


CAPS = (
    ("renders", "max_renders"),
    ("gpu_hours", "max_gpu_hours"),
    ("usd", "max_usd"),
    ("api_calls", "max_api_calls"),
)


class BudgetExhaustedError(DatapipeError):
    """The next block would pass a cap: the run stopped after the last committed block."""

    def __init__(self, cap: str, limit: float, spent: Spend, projected: Spend, block: int) -> None:
        self.cap = cap
        self.limit = limit
        self.spent = spent
        self.projected = projected
        self.block = block
        self.summary: RunSummary | None = None
        """The run's summary up to the stop (set by the runner)."""
        super().__init__(
            f"budget: block {block} would take {cap} to {getattr(projected, cap):.4g}, past "
            f"execution.budget.{dict(CAPS)[cap]} = {limit:g}; stopped after the last "
            f"committed block having spent {spent.to_dict()}",
            fix="rerun the same command with a larger cap (--max-...) to resume",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cap": dict(CAPS)[self.cap],
            "limit": self.limit,
            "next_block": self.block,
            "spent": self.spent.to_dict(),
            "with_next_block": self.projected.to_dict(),
        }


class Budget:
    def __init__(self, loaded: LoadedRecipe) -> None:
        self.loaded = loaded
        self.config: BudgetConfig = loaded.recipe.execution.budget

    @property
    def capped(self) -> bool:
        return any(getattr(self.config, key) is not None for _, key in CAPS)

    def per_render(self, summary: RunSummary) -> Spend:
        """What one more render costs, measured on this invocation where it can be."""
        recipe = self.loaded.recipe
        priors = recipe.costs.priors
        if summary.rendered:
            report = cost_report(summary, summary.cost_basis)
            usd = report.usd()
            calls = sum(u.calls for u in report.api.values())
            return Spend(
                1.0,
                (report.gpu_seconds_per_render or 0.0) / 3600,
                (usd["total"] or 0.0) / report.renders if report.renders else 0.0,
                calls / report.rendered,
            )
        gpu = summary.cost_basis.gpus.get(RENDER, 0.0) > 0
        llm = recipe.stages.prompt.backend == "openai"
        tokens_in, tokens_out = priors.llm_tokens_per_call
        llm_usd = (
            tokens_in * recipe.costs.llm_input_per_mtok_usd
            + tokens_out * recipe.costs.llm_output_per_mtok_usd
        ) / 1e6
        hours = priors.render_seconds / 3600 if gpu else 0.0
        return Spend(
            1.0, hours, hours * recipe.costs.gpu_hour_usd + llm * llm_usd, 1.0 if llm else 0.0
        )

    def check(self, block: int, groups: list[Group], summary: RunSummary) -> None:
        """Raise BudgetExhaustedError when rendering `groups` would pass a cap."""
        _, stop = self.fitting([(block, groups)], summary)
        if stop is not None:
            raise stop

    def split(self, window: list[Group], summary: RunSummary) -> tuple[list[Group], list[Group]]:
        """The whole blocks at the head of `window` (groups in block order, rendered
        together) that fit under the caps, and the rest, to be checked again once those
        are committed (at the cost then measured); raises when not even the first fits."""
        blocks: dict[int, list[Group]] = {}
        for group in window:
            blocks.setdefault(group.block, []).append(group)
        ordered = list(blocks.items())
        n, stop = self.fitting(ordered, summary)
        if n == 0 and stop is not None:
            raise stop
        return [g for _, gs in ordered[:n] for g in gs], [g for _, gs in ordered[n:] for g in gs]

    def fitting(
        self, blocks: Sequence[tuple[int, list[Group]]], summary: RunSummary
    ) -> tuple[int, BudgetExhaustedError | None]:
        """How many of `blocks` (in commit order, rendered together) fit under the caps,
        and the stop for the first that does not (None when all fit)."""
        if not self.capped:
            return len(blocks), None
        recipe = self.loaded.recipe
        per_render = self.per_render(summary)
        spent = per_render.times(summary.renders)
        projected = spent
        for n, (block, groups) in enumerate(blocks):
            renders = sum(renders_per_group(recipe, g.kind) for g in groups)
            projected = projected.plus(per_render.times(renders))
            for field_name, key in CAPS:
                limit = getattr(self.config, key)
                if limit is not None and getattr(projected, field_name) > limit + 1e-12:
                    return n, BudgetExhaustedError(field_name, limit, spent, projected, block)
        return len(blocks), None


def with_caps(loaded: LoadedRecipe, **caps: float | None) -> LoadedRecipe:
    """The recipe with the caps given (the CLI's --max-... flags) replacing its own; the
    hashes do not change (execution is outside them)."""
    given = {k: v for k, v in caps.items() if v is not None}
    if not given:
        return loaded
    recipe = loaded.recipe
    budget = recipe.execution.budget.model_copy(update=given)
    execution = recipe.execution.model_copy(update={"budget": budget})
    return dataclasses.replace(loaded, recipe=recipe.model_copy(update={"execution": execution}))
