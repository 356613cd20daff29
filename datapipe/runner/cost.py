"""What a run's pairs cost: yield per render, GPU-seconds and API tokens per pair, in USD.

Renders are the expensive asset (a 50-step Qwen-Image render is ~35 GPU-seconds), so
every run reports, from its own counts and timings, how many accepted pairs each render
gave (per task and overall), what the renders cost in device time, what the API stages
paid in calls and tokens, and the resulting price of one pair at the recipe's `costs`.

Two kinds of figures meet here. Counts (renders, pairs) cover the whole output,
finished blocks included. Costs are measured on this invocation's renders and API calls
(a resumed run did not pay again for the blocks it read back) and scaled to the whole
output per render; `basis` says how many renders they were measured on, and they are
None when this invocation rendered nothing.

A worker holding a fractional GPU share still runs on one whole device, and a render
keeps that device at its arithmetic ceiling, so a GPU stage's device-seconds are its
busy seconds times its GPUs per worker rounded up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.table import Table

from datapipe.libraries import LoadedRecipe
from datapipe.recipe import CostConfig
from datapipe.runner.pools import recipe_pools
from datapipe.stages.bench import JUDGE

if TYPE_CHECKING:
    from datapipe.records import Group
    from datapipe.runner.summary import RunSummary

RENDER = "render"
LLM_STAGE = "prompt"
"""The stage whose API usage the recipe's llm_* prices apply to."""
"""The bench judge's API usage, which the recipe's judge_* prices apply to."""


@dataclass
class ApiUsage:
    """What one stage's API backend recorded on the candidates it served."""

    calls: int = 0
    """HTTP requests, retries included."""
    cached: int = 0
    """Replies read from the response cache: nothing paid."""
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, record: dict[str, Any]) -> None:
        usage = record.get("usage") or {}
        self.calls += int(record.get("attempts") or 0)
        self.cached += int(bool(record.get("cached")))
        self.input_tokens += int(usage.get("prompt_tokens") or 0)
        self.output_tokens += int(usage.get("completion_tokens") or 0)

    def to_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "cached": self.cached,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


def add_api_usage(usage: dict[str, ApiUsage], groups: Iterable[Group]) -> None:
    """Sum what the candidate stages recorded as `details[stage] = {attempts, cached,
    usage}`; called once per group, when its candidates come back from rendering."""
    for group in groups:
        for candidate in group.candidates:
            for stage, record in candidate.details.items():
                if isinstance(record, dict) and isinstance(record.get("usage"), dict):
                    usage.setdefault(stage, ApiUsage()).add(record)


def add_commit_usage(usage: dict[str, ApiUsage], groups: Iterable[Group]) -> None:
    """Sum what the stages run at commit (the bench judge) recorded on the groups."""
    for group in groups:
        for record in group.api_usage:
            usage.setdefault(record["stage"], ApiUsage()).add(record)


@dataclass(frozen=True)
class CostBasis:
    """What the report needs from the recipe: prices, and each stage's GPUs per worker."""

    prices: CostConfig = field(default_factory=CostConfig)
    gpus: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, loaded: LoadedRecipe) -> CostBasis:
        # The pool resolution (declared resources, then the recipe's
        # execution overrides) is the one place a stage's GPU share is decided.
        pools = recipe_pools(loaded)
        return cls(loaded.recipe.costs, {p.stage.name: p.gpus for p in pools if p.gpus})


def _ratio(a: float | None, b: float) -> float | None:
    return None if a is None or not b else a / b


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class CostReport:
    renders: int
    rendered: int
    pairs_by_task: dict[str, int]
    render_device: str
    """gpu when the render pool holds GPUs, else cpu (procedural and simulated renderers)."""
    render_seconds_per_render: float | None
    """Device-seconds of one render, measured on this invocation's renders."""
    gpu_seconds_per_render: float | None
    """Every GPU stage's device-seconds per render (render, and SAM-2 or CLIP if on GPU)."""
    gpu_seconds_by_stage: dict[str, float]
    api: dict[str, ApiUsage]
    prices: CostConfig
    cpu_seconds_by_stage: dict[str, float] = field(default_factory=dict)
    """Busy seconds of every stage that holds no GPU (the renderer too when it runs on a CPU),
    measured on this invocation: OCR, not the procedural renderer, is most of a CPU run."""

    @property
    def cpu_seconds_per_render(self) -> float | None:
        return _ratio(sum(self.cpu_seconds_by_stage.values()), self.rendered)

    @property
    def cpu_seconds(self) -> float | None:
        per = self.cpu_seconds_per_render
        return None if per is None else per * self.renders

    @property
    def pairs(self) -> int:
        return sum(self.pairs_by_task.values())

    @property
    def render_seconds(self) -> float | None:
        """For the whole output: the measured cost per render times its renders."""
        per = self.render_seconds_per_render
        return None if per is None else per * self.renders

    @property
    def gpu_seconds(self) -> float | None:
        per = self.gpu_seconds_per_render
        return None if per is None else per * self.renders

    def usd(self) -> dict[str, float | None]:
        """This invocation's API bill scaled to the output like the device time."""
        prices = self.prices
        gpu = _ratio(self.gpu_seconds, 3600)
        gpu_usd = None if gpu is None else gpu * prices.gpu_hour_usd
        llm_usd = self._tokens_usd(
            LLM_STAGE, prices.llm_input_per_mtok_usd, prices.llm_output_per_mtok_usd
        )
        judge_usd = self._tokens_usd(
            JUDGE, prices.judge_input_per_mtok_usd, prices.judge_output_per_mtok_usd
        )
        parts = (gpu_usd, llm_usd, judge_usd)
        total = None if None in parts else sum(parts)
        return {
            "gpu": _round(gpu_usd, 6),
            "llm": _round(llm_usd, 6),
            "judge": _round(judge_usd, 6),
            "total": _round(total, 6),
            "per_pair": _round(_ratio(total, self.pairs), 8),
        }

    def _tokens_usd(self, stage: str, per_mtok_in: float, per_mtok_out: float) -> float | None:
        """A stage's tokens at its prices, scaled from this invocation's renders to the
        output's; None when this invocation rendered nothing to measure on."""
        if not self.rendered:
            return None
        used = self.api.get(stage, ApiUsage())
        paid = (used.input_tokens * per_mtok_in + used.output_tokens * per_mtok_out) / 1e6
        return paid * self.renders / self.rendered

    def to_dict(self) -> dict[str, Any]:
        by_task = {
            task: {
                "pairs": n,
                "pairs_per_render": _round(_ratio(n, self.renders)),
                "render_seconds_per_pair": _round(_ratio(self.render_seconds, n)),
                "gpu_seconds_per_pair": _round(_ratio(self.gpu_seconds, n)),
            }
            for task, n in sorted(self.pairs_by_task.items())
        }
        return {
            "basis": f"device time and API usage measured on {self.rendered} renders of this "
            f"invocation, scaled to the output's {self.renders}",
            "renders": self.renders,
            "rendered_this_run": self.rendered,
            "pairs": self.pairs,
            "pairs_per_render": _round(_ratio(self.pairs, self.renders)),
            "render_device": self.render_device,
            "render_seconds_per_render": _round(self.render_seconds_per_render),
            "render_seconds_per_pair": _round(_ratio(self.render_seconds, self.pairs)),
            "gpu_seconds": _round(self.gpu_seconds, 3),
            "gpu_seconds_by_stage_this_run": {
                k: round(v, 3) for k, v in sorted(self.gpu_seconds_by_stage.items())
            },
            "gpu_seconds_per_pair": _round(_ratio(self.gpu_seconds, self.pairs)),
            "cpu_seconds_per_render": _round(self.cpu_seconds_per_render),
            "cpu_seconds_per_pair": _round(_ratio(self.cpu_seconds, self.pairs)),
            "cpu_seconds_by_stage_this_run": {
                k: round(v, 3) for k, v in sorted(self.cpu_seconds_by_stage.items())
            },
            "by_task": by_task,
            "api_this_run": {stage: u.to_dict() for stage, u in sorted(self.api.items())},
            "prices": self.prices.model_dump(),
            "usd": self.usd(),
        }

    def table(self) -> Table:
        table = Table(title="yield and cost")
        devices = [("gpu", self.gpu_seconds)] if self.gpu_seconds_by_stage else []
        devices.append(("cpu", self.cpu_seconds))
        columns = ["", "pairs", "pairs/render", *(f"{d}-s/pair" for d, _ in devices)]
        for column in columns:
            table.add_column(column, justify="right" if column else "left")
        rows = [("all tasks", self.pairs), *sorted(self.pairs_by_task.items())]
        for name, n in rows:
            per_pair = [_ratio(seconds, n) for _, seconds in devices]
            table.add_row(
                name,
                str(n),
                f"{n / self.renders:.2f}" if self.renders else "-",
                *("-" if p is None else f"{p:.3g}" for p in per_pair),
            )
        parts = [f"{self.renders} renders; per render, measured on {self.rendered}:"]
        if self.gpu_seconds_per_render is not None and self.gpu_seconds_by_stage:
            parts.append(f"{self.gpu_seconds_per_render:.3g} gpu-s")
        if self.cpu_seconds_per_render is not None:
            heaviest = sorted(self.cpu_seconds_by_stage.items(), key=lambda kv: -kv[1])[:3]
            shares = ", ".join(f"{k} {v / self.rendered:.3g}" for k, v in heaviest)
            parts.append(f"{self.cpu_seconds_per_render:.3g} cpu-s over every CPU stage ({shares})")
        table.caption = " ".join(parts)
        for stage, u in sorted(self.api.items()):
            table.caption += (
                f"; {stage}: {u.calls} API calls ({u.cached} cached), "
                f"{u.input_tokens} + {u.output_tokens} tokens"
            )
        usd = self.usd()
        if usd["per_pair"] is not None:
            table.caption += f"; ${usd['total']:.2f} in all, ${usd['per_pair']:.5f} per pair"
        return table


def cost_report(summary: RunSummary, basis: CostBasis) -> CostReport:
    pairs: dict[str, int] = {}
    for counter in (summary.pairs, summary.bench_pairs):
        for (task, _), n in counter.items():
            pairs[task] = pairs.get(task, 0) + n
    rendered = summary.rendered
    render_gpus = basis.gpus.get(RENDER, 0.0)
    render = summary.stages.get(RENDER)
    render_busy = render.seconds if render else 0.0
    gpu_seconds = {
        name: summary.stages[name].seconds * math.ceil(gpus)
        for name, gpus in basis.gpus.items()
        if name in summary.stages
    }
    return CostReport(
        renders=summary.renders,
        rendered=rendered,
        pairs_by_task=pairs,
        render_device="gpu" if render_gpus else "cpu",
        render_seconds_per_render=_ratio(render_busy * max(1, math.ceil(render_gpus)), rendered),
        gpu_seconds_per_render=_ratio(sum(gpu_seconds.values()), rendered),
        gpu_seconds_by_stage=gpu_seconds,
        api=dict(summary.api),
        prices=basis.prices,
        cpu_seconds_by_stage={
            name: timing.seconds
            for name, timing in summary.stages.items()
            if name not in basis.gpus and timing.seconds
        },
    )
