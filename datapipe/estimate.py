"""Plan before you spend: what a recipe will render, call, make and cost, before it runs.

Two sources. Without a pilot, the recipe's own counts (groups, group sizes, bench
quotas) and the priors under `costs.priors` (seconds per render, keep rate, tokens per
call): a rough figure with no interval. With a pilot (a finished small run of the same
generation settings, e.g. `datapipe run RECIPE --limit 30`), every rate is measured:
pairs of each task per group of each kind, keep rates per language and theme, device
seconds per render, API calls and tokens per render.

A pilot's groups are the first groups of the full plan (same generation hash, so same
ids and seeds), so the full run's pairs are the pilot's own plus those of the groups it
did not render. Those are predicted group by group from two rates the whole pilot
measures, not from the few pilot groups of each kind: the share of renders the filter
keeps, per theme (a pilot's themes are not the full run's mix: a 30-group quickstart
pilot has no nature poster, whose keep rate is the highest), and per task the share of
possible pairs its builder made (`possible_pairs`: a sample per kept render, or a pair per
kept member of a group with two kept). Pairs per pilot group of each (task, kind) cell,
as measured, set the spread of single groups. The 95% interval: both rates at the ends
of their Wilson intervals (every kind's at once: they rest on the same two rates), widened
by the groups' own chance, 1.96 sqrt(sum of s^2 over the groups left) (groups are
independent; s^2 per group is taken with two pseudo-groups added, one with no pair and one
with the most a group can give, so a small pilot whose groups all happened to agree does
not claim certainty). A larger pilot narrows the rates' part; the groups' own chance is
the run's, and the plan says where it alone is wider than +-15%.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.markup import escape
from rich.table import Table

from datapipe.coverage import coverage
from datapipe.errors import DatapipeError, OutputError
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.layout import OutputLayout
from datapipe.libraries import LoadedRecipe
from datapipe.plan import (
    bench_cells,
    groups_to_reach,
    plan_groups,
    possible_pairs,
    prior_pairs_per_group,
    renders_per_group,
)
from datapipe.recipe import GROUP_KINDS, Recipe
from datapipe.runner.cost import RENDER, CostBasis
from datapipe.tasks.registry import TASKS

Z95 = 1.96
KEEP_DIMENSIONS = ("language", "theme")
THEME_PRIOR = 4
WITHIN = 0.15
"""How close a plan should come to what a run makes (relative, 95%): the pilot size the
plan suggests is for this."""
"""A theme's keep rate counts the pooled rate as this many renders besides its own: one
rejected render of a theme no longer predicts that none of its groups keeps anything."""


@dataclass(frozen=True)
class Figure:
    """An estimate with its 95% interval; no interval where it rests on a prior."""

    value: float
    low: float | None = None
    high: float | None = None

    def scaled(self, factor: float) -> Figure:
        return Figure(
            self.value * factor,
            None if self.low is None else self.low * factor,
            None if self.high is None else self.high * factor,
        )

    def plus(self, other: Figure) -> Figure:
        """Sum of two figures; their interval bounds add (a conservative envelope)."""
        if self.low is None or other.low is None or self.high is None or other.high is None:
            return Figure(self.value + other.value)
        return Figure(self.value + other.value, self.low + other.low, self.high + other.high)

    def to_dict(self, digits: int = 4) -> dict[str, float | None]:
        return {
            "value": round(self.value, digits),
            "low": None if self.low is None else round(self.low, digits),
            "high": None if self.high is None else round(self.high, digits),
        }

    def end(self, which: str) -> float:
        """`value`, `low` or `high`; the value where the interval has no such end."""
        found = getattr(self, which)
        return self.value if found is None else found

    def text(self, fmt: str = ".0f") -> str:
        if self.low is None and self.high is None:
            return f"{self.value:{fmt}} (prior)"
        low = "?" if self.low is None else f"{self.low:{fmt}}"
        high = "?" if self.high is None else f"{self.high:{fmt}}"
        return f"{self.value:{fmt}} [{low}, {high}]"


def wilson(successes: int, n: int) -> Figure:
    """A rate with its 95% Wilson interval (sound at 0, 1 and small n)."""
    if n == 0:
        raise ValueError("a rate needs at least one trial")
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return Figure(p, max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class CellRate:
    """Pairs of one task per group of one kind, as the pilot measured them."""

    counts: tuple[int, ...]
    """Pairs each pilot group of the kind gave (zeros included)."""
    most: int
    """The most pairs one group of the kind can give (its renders)."""

    @property
    def n(self) -> int:
        return len(self.counts)

    @property
    def mean(self) -> float:
        return sum(self.counts) / self.n

    @property
    def variance(self) -> float:
        """Per-group variance with two pseudo-groups added, one with no pair and one with
        the most a group can give (Agresti-Coull's add-two, for counts): a small pilot
        whose groups all happened to agree still gets a spread."""
        padded = (*self.counts, 0, self.most)
        mean = sum(padded) / len(padded)
        return sum((c - mean) ** 2 for c in padded) / (len(padded) - 1)


@dataclass
class Pilot:
    """What a finished small run measured."""

    path: Path
    groups: dict[str, int]
    """Train groups of each kind the pilot rendered."""
    pairs: dict[str, int]
    """Train pairs of each task the pilot made."""
    cells: dict[tuple[str, str], CellRate]
    """(task, group kind) -> pairs per group."""
    ids: set[str]
    """The pilot's train groups (the plan's first ones)."""
    themes: dict[str, tuple[int, int]]
    """Theme -> (kept, renders) of the pilot's train renders."""
    built: dict[str, tuple[int, int]]
    """Task -> (pairs made, pairs possible from the kept renders, `possible_pairs`)."""
    renders: int
    rendered: int
    """Renders this pilot's last invocation made (its device time and API usage are per these)."""
    device: str
    seconds_per_render: float | None
    api: dict[str, dict[str, int]]
    keep: dict[str, dict[str, tuple[int, int]]]
    """dimension -> value -> (kept, renders)."""
    bench: dict[str, tuple[int, int]]
    """bench task -> (groups that passed, groups)."""

    def rate(self, task: str, size: int, themes: list[str]) -> Figure:
        """Pairs of `task` per group of `size` renders, averaged over groups of `themes`:
        `possible_pairs` at each theme's keep rate (drawn towards the pooled one by
        THEME_PRIOR renders: a theme the pilot rendered once says little), times the
        share of possible pairs the builder made (1, as the priors assume, where the
        pilot's kept renders allowed none). Interval: both rates at the ends of their
        Wilson intervals."""
        kept = sum(k for k, _ in self.themes.values())
        pooled = wilson(kept, sum(n for _, n in self.themes.values()))
        made, possible = self.built[task]
        built = wilson(min(made, possible), possible) if possible else Figure(1.0, 0.0, 1.0)
        ends = []
        for shift, share in (
            (0.0, built.value),
            ((pooled.low or 0.0) - pooled.value, built.low or 0.0),
            ((pooled.high or 1.0) - pooled.value, built.high or 1.0),
        ):
            total = 0.0
            for theme in themes:
                k, n = self.themes.get(theme, (0, 0))
                measured = (k + THEME_PRIOR * pooled.value) / (n + THEME_PRIOR)
                keep = min(1.0, max(0.0, measured + shift))
                total += possible_pairs(task, size, keep) * share
            ends.append(total / len(themes))
        return Figure(*ends)


def read_pilot(loaded: LoadedRecipe, path: Path) -> Pilot:
    """Read a finished run of the same generation settings; refuse anything else."""
    run_json = path / "run.json"
    try:
        record = json.loads(run_json.read_text())
    except (OSError, ValueError) as exc:
        raise OutputError(
            f"--pilot {path}: no readable run.json ({exc})",
            fix=f"pass the --out folder of a finished run, e.g. datapipe run {loaded.path} "
            f"--out {path} --limit 30",
        ) from None
    if record.get("generation_hash") != loaded.generation_hash:
        old = str(record.get("generation_hash"))[:12]
        raise OutputError(
            f"--pilot {path} was rendered with other generation settings (generation hash "
            f"{old}, this recipe {loaded.generation_hash[:12]}): its rates say nothing of "
            "this recipe's renders",
            fix=f"run a pilot of this recipe: datapipe run {loaded.path} --out NEW --limit 30",
        )
    summary = record.get("summary")
    if record.get("status") != "finished" or not summary:
        raise OutputError(
            f"--pilot {path} is not finished (status {record.get('status')})",
            fix="rerun the pilot's command to finish it, then plan again",
        )
    slots = plan_groups(loaded, record.get("limit"))
    groups = Counter(s.kind for s in slots)
    per_group: dict[str, Counter[str]] = defaultdict(Counter)
    for manifest in OutputLayout(path).shard_manifests("train"):
        for row in pq.read_table(manifest, columns=["task", "group_id"]).to_pylist():
            per_group[row["task"]][row["group_id"]] += 1
    pairs = {task: sum(counts.values()) for task, counts in per_group.items()}
    cells = {}
    for task in loaded.recipe.split_tasks("train").enabled():
        for kind in TASKS[task].group_kinds():
            ids = [s.group_id for s in slots if s.kind == kind]
            if ids:
                counts = tuple(per_group[task][g] for g in ids)
                cells[(task, kind)] = CellRate(counts, renders_per_group(loaded.recipe, kind))
    members = _members(path)
    themes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for slot in slots:
        renders, kept = members.get(slot.group_id, (0, 0))
        themes[slot.theme][0] += kept
        themes[slot.theme][1] += renders
    built = {}
    for task in loaded.recipe.split_tasks("train").enabled():
        kinds = TASKS[task].group_kinds()
        possible = sum(
            _possible(task, members.get(s.group_id, (0, 0))[1]) for s in slots if s.kind in kinds
        )
        built[task] = (pairs.get(task, 0), possible)
    found = coverage(path)
    keep = {
        dim: {v: (c["kept"], c["renders"]) for v, c in found.counts.get(dim, {}).items()}
        for dim in KEEP_DIMENSIONS
    }
    cost = summary.get("cost") or {}
    device = cost.get("render_device", "cpu")
    seconds = cost.get("gpu_seconds_per_render" if device == "gpu" else "cpu_seconds_per_render")
    bench: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in (record.get("bench") or {}).get("quotas", []):
        bench[row["task"]][0] += row["passed"]
        bench[row["task"]][1] += row["groups"]
    return Pilot(
        path=path,
        groups=dict(groups),
        pairs=pairs,
        cells=cells,
        ids={s.group_id for s in slots},
        themes={t: (k, n) for t, (k, n) in themes.items()},
        built=built,
        renders=summary.get("renders", 0),
        rendered=summary.get("rendered_this_run", 0),
        device=device,
        seconds_per_render=seconds,
        api=cost.get("api_this_run") or {},
        keep=keep,
        bench={t: (p, g) for t, (p, g) in bench.items()},
    )


def _members(path: Path) -> dict[str, tuple[int, int]]:
    """Train group id -> (renders, renders the filter kept), from the candidate store
    and the filter's rejections."""
    table = CandidateStore(path).read_table()
    if table is None:
        return {}
    rejects = pq.read_table(OutputLayout(path).rejects, columns=["candidate_key", "stage"])
    dropped = {r["candidate_key"] for r in rejects.to_pylist() if r["stage"] == "filter"}
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in table.select(["key", "group_id", "split"]).to_pylist():
        if row["split"] == "train":
            out[row["group_id"]][0] += 1
            out[row["group_id"]][1] += row["key"] not in dropped
    return {g: (n, k) for g, (n, k) in out.items()}


def _possible(task: str, kept: int) -> int:
    """Pairs a group's kept renders allow a task (what `possible_pairs` expects)."""
    if TASKS[task].per == "poster":
        return kept
    return kept if kept >= 2 else 0


@dataclass(frozen=True)
class TargetRounds:
    """What a recipe with `targets` renders past its first round. The planner asks, for
    every task still short, for its shortfall at the pairs per group measured so far,
    times `targets.margin`; at the rates this plan rests on, that second round meets
    every target, so the plan adds it. Its interval: the rates at the ends of theirs
    (low rates: a larger shortfall, and more groups to fill it)."""

    first: dict[str, Figure]
    """Task -> pairs the first round (the recipe's `groups`) is expected to make."""
    extra: dict[str, Figure]
    """Group kind -> groups the later rounds are expected to ask for."""
    rounds: int
    """Rounds expected at the plan's rates (the run stops at `targets.max_rounds`)."""
    max_rounds: int
    wanted: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "wanted": self.wanted,
            "first_round_pairs": {t: f.to_dict(1) for t, f in self.first.items()},
            "later_groups": {k: f.to_dict(1) for k, f in self.extra.items()},
            "rounds": self.rounds,
            "max_rounds": self.max_rounds,
        }


RATE_ENDS = ("value", "high", "low")
"""A figure's rate ends in the order of the figure they give: the plan at the measured
rates, then at their high ends (fewest groups), then at their low ends (most)."""


def target_rounds(
    recipe: Recipe, rates: dict[str, dict[str, Figure]], first: dict[str, Figure]
) -> tuple[TargetRounds, dict[str, Figure], list[str]]:
    """The later rounds of a target-driven recipe (`TargetRounds`), the train samples it
    is expected to write (a target's task at most its target; the others what every
    round makes) and notes where a rate's end cannot bound them."""
    config = recipe.targets
    assert config is not None
    notes: list[str] = []
    asks: list[dict[str, int] | None] = []
    for end in RATE_ENDS:
        short = {
            task: math.ceil(wanted - first[task].end(end))
            for task, wanted in config.pairs.items()
            if first[task].end(end) < wanted
        }
        if not short or config.max_rounds < 2:
            asks.append({})
            continue
        try:
            need = groups_to_reach(recipe, short, lambda t, k, e=end: _rate_end(rates, t, k, e))
        except DatapipeError:
            if end == "value":
                raise
            asks.append(None)
            notes.append(
                "at the low end of a rate's interval no number of groups reaches the targets: "
                "the most the later rounds may render is not bounded (run a larger pilot)"
            )
            continue
        asks.append({k: math.ceil(n * config.margin) for k, n in need.items() if n})
    measured = all(f.low is not None for f in first.values())
    extra = {}
    for kind in GROUP_KINDS:
        ends = [None if ask is None else ask.get(kind, 0) for ask in asks]
        if not any(ends):
            continue
        value = float(ends[0] or 0)
        extra[kind] = Figure(value, _float(ends[1]), _float(ends[2])) if measured else Figure(value)
    pairs = {}
    for task, made in first.items():
        ends = []
        for end, ask in zip(RATE_ENDS, asks, strict=True):
            later = sum(n * _rate_end(rates, task, k, end) for k, n in (ask or {}).items())
            total = made.end(end) + later
            ends.append(min(total, config.pairs.get(task, total)))
        pairs[task] = Figure(ends[0], ends[2], ends[1]) if measured else Figure(ends[0])
    rounds = TargetRounds(
        first=first,
        extra=extra,
        rounds=1 + bool(asks[0]),
        max_rounds=config.max_rounds,
        wanted=dict(config.pairs),
    )
    return rounds, pairs, notes


def _rate_end(rates: dict[str, dict[str, Figure]], task: str, kind: str, end: str) -> float:
    figure = rates.get(task, {}).get(kind)
    return 0.0 if figure is None else figure.end(end)


def _float(value: int | None) -> float | None:
    return None if value is None else float(value)


@dataclass
class Estimate:
    basis: str
    groups: dict[str, int]
    pairs: dict[str, dict[str, Figure]]
    """split -> task -> pairs."""
    pairs_per_group: dict[str, dict[str, Figure]]
    """task -> group kind -> pairs per group (the rates the prediction rests on)."""
    bench_groups: Figure | None
    renders: Figure
    llm_calls: Figure
    judge_calls: Figure
    keep_rates: dict[str, dict[str, Figure]]
    device: str
    seconds_per_render: float
    device_hours: Figure
    gpu_hours: Figure
    usd: Figure
    workers: int
    wall_hours: Figure
    notes: list[str] = field(default_factory=list)
    targets: TargetRounds | None = None
    pilot_groups: int = 0
    chance: dict[str, float] = field(default_factory=dict)
    """Task -> the part of its train pairs' interval half-width that is the unrendered
    groups' own chance (their spread): a larger pilot narrows the rest, never this."""

    def pilot_for(self, task: str, within: float = WITHIN) -> int | None:
        """About how many pilot groups would bound `task`'s train pairs to +-`within` of
        the value (95%): the rates' part of the interval narrows as 1/sqrt(groups), the
        groups' own chance not at all. None where that chance alone is wider (no pilot
        can), or without a measured interval."""
        figure = self.pairs["train"][task]
        if not self.pilot_groups or figure.low is None or figure.high is None:
            return None
        room = within * figure.value - self.chance.get(task, 0.0)
        if room <= 0:
            return None
        # the upper side: the lower one may be cut at the pairs the pilot already made
        rates = max(0.0, figure.high - figure.value - self.chance.get(task, 0.0))
        return max(self.pilot_groups, math.ceil(self.pilot_groups * (rates / room) ** 2))

    def to_dict(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "groups": self.groups,
            "targets": None if self.targets is None else self.targets.to_dict(),
            "bench_groups": None if self.bench_groups is None else self.bench_groups.to_dict(1),
            "renders": self.renders.to_dict(1),
            "llm_calls": self.llm_calls.to_dict(1),
            "judge_calls": self.judge_calls.to_dict(1),
            "pairs": {
                split: {task: f.to_dict(1) for task, f in tasks.items()}
                for split, tasks in self.pairs.items()
            },
            "pairs_per_group": {
                task: {kind: f.to_dict() for kind, f in kinds.items()}
                for task, kinds in self.pairs_per_group.items()
            },
            "keep_rates": {
                dim: {v: f.to_dict() for v, f in values.items()}
                for dim, values in self.keep_rates.items()
            },
            "device": self.device,
            "seconds_per_render": round(self.seconds_per_render, 4),
            "device_hours": self.device_hours.to_dict(),
            "gpu_hours": self.gpu_hours.to_dict(),
            "usd": self.usd.to_dict(2),
            "workers": self.workers,
            "wall_hours": self.wall_hours.to_dict(),
            "notes": self.notes,
            "pilot_groups": self.pilot_groups,
            "chance": {t: round(c, 2) for t, c in self.chance.items()},
            "pilot_for_15pct": {t: self.pilot_for(t) for t in self.chance},
        }


def estimate(loaded: LoadedRecipe, pilot: Pilot | None = None, workers: int = 1) -> Estimate:
    """The plan of a full run of `loaded` (every train group, every bench quota)."""
    recipe = loaded.recipe
    groups = recipe.groups.model_dump()
    notes: list[str] = []
    train_tasks = recipe.split_tasks("train").enabled()
    rates: dict[str, dict[str, Figure]] = {}
    train: dict[str, Figure] = {}
    chance: dict[str, float] = {}
    left = [s for s in plan_groups(loaded) if pilot is None or s.group_id not in pilot.ids]
    for task in train_tasks:
        made = pilot.pairs.get(task, 0) if pilot else 0
        total = Figure(made, made, made) if pilot else Figure(0.0)
        rates[task] = {}
        variance = 0.0
        for kind in TASKS[task].group_kinds():
            if not groups[kind]:
                continue
            if pilot is None:
                rate = prior_pairs_per_group(recipe, task, kind)
                rates[task][kind] = Figure(rate)
                total = total.plus(Figure(rate * groups[kind]))
                continue
            themes = [s.theme for s in left if s.kind == kind]
            size = renders_per_group(recipe, kind)
            rate = pilot.rate(task, size, themes or [s.theme for s in plan_groups(loaded)])
            rates[task][kind] = rate
            cell = pilot.cells.get((task, kind))
            variance += len(themes) * (cell or CellRate((), size)).variance
            total = total.plus(rate.scaled(len(themes)))
        if pilot is not None:
            chance[task] = Z95 * math.sqrt(variance)
            low, high = total.end("low") - chance[task], total.end("high") + chance[task]
            total = Figure(total.value, max(float(made), low), high)
        train[task] = total
        if pilot is not None and not pilot.built[task][1]:
            notes.append(
                f"the pilot's kept renders allowed no {task} pair: its builder is assumed to "
                "make every one (run a larger pilot to measure it)"
            )
    train_renders = sum(n * renders_per_group(recipe, k) for k, n in groups.items())
    later = Figure(0.0, 0.0, 0.0)
    rounds = None
    if recipe.targets is not None:
        rounds, train, target_notes = target_rounds(recipe, rates, train)
        notes += target_notes
        for kind, extra in rounds.extra.items():
            later = later.plus(extra.scaled(renders_per_group(recipe, kind)))
    pairs = {"train": train}
    bench_groups, bench_renders = None, Figure(0.0, 0.0, 0.0)
    if recipe.bench is not None:
        bench_groups, bench_renders, pairs["bench"] = _bench(loaded, pilot, notes)
    renders = Figure(train_renders, train_renders, train_renders).plus(bench_renders).plus(later)
    if pilot is None:
        renders = Figure(renders.value)
    priors = recipe.costs.priors
    seconds = priors.render_seconds
    device = "gpu" if CostBasis.of(loaded).gpus.get(RENDER) else "cpu"
    if pilot is not None and pilot.seconds_per_render:
        seconds, device = pilot.seconds_per_render, pilot.device
    llm_calls = _calls(pilot, "prompt", renders, recipe.stages.prompt.backend == "openai")
    judge_on = recipe.bench is not None and recipe.bench.judge.backend == "gemini"
    judge_calls = _calls(pilot, "judge", bench_groups or Figure(0.0), judge_on, per_renders=False)
    prices = recipe.costs
    llm_tokens = _tokens(pilot, "prompt", priors.llm_tokens_per_call)
    judge_tokens = _tokens(pilot, "judge", priors.judge_tokens_per_call)
    per_call_llm = (
        llm_tokens[0] * prices.llm_input_per_mtok_usd
        + llm_tokens[1] * prices.llm_output_per_mtok_usd
    ) / 1e6
    per_call_judge = (
        judge_tokens[0] * prices.judge_input_per_mtok_usd
        + judge_tokens[1] * prices.judge_output_per_mtok_usd
    ) / 1e6
    device_hours = renders.scaled(seconds / 3600)
    gpu_hours = device_hours if device == "gpu" else Figure(0.0, 0.0, 0.0)
    usd = (
        gpu_hours.scaled(prices.gpu_hour_usd)
        .plus(llm_calls.scaled(per_call_llm))
        .plus(judge_calls.scaled(per_call_judge))
    )
    keep_rates = (
        {
            dim: {v: wilson(k, n) for v, (k, n) in sorted(values.items()) if n}
            for dim, values in pilot.keep.items()
        }
        if pilot
        else {"all": {"renders": Figure(priors.keep_rate)}}
    )
    basis = (
        f"pilot {pilot.path}: {sum(pilot.groups.values())} train groups, {pilot.renders} "
        f"renders ({pilot.rendered} timed)"
        if pilot
        else "recipe priors (costs.priors); run a pilot (--limit 30) and pass --pilot for "
        "measured rates with intervals"
    )
    return Estimate(
        basis=basis,
        groups=groups,
        pairs=pairs,
        pairs_per_group=rates,
        targets=rounds,
        pilot_groups=sum(pilot.groups.values()) if pilot else 0,
        chance=chance if rounds is None else {},
        bench_groups=bench_groups,
        renders=renders,
        llm_calls=llm_calls,
        judge_calls=judge_calls,
        keep_rates=keep_rates,
        device=device,
        seconds_per_render=seconds,
        device_hours=device_hours,
        gpu_hours=gpu_hours,
        usd=usd,
        workers=workers,
        wall_hours=device_hours.scaled(1 / workers),
        notes=notes,
    )


def _bench(
    loaded: LoadedRecipe, pilot: Pilot | None, notes: list[str]
) -> tuple[Figure, Figure, dict[str, Figure]]:
    """Bench groups, renders and pairs: each quota filled at the measured acceptance (the
    bench renders until it is), up to the recipe's ceiling of groups per sample."""
    recipe = loaded.recipe
    assert recipe.bench is not None
    oversample = recipe.bench.oversample
    quotas: Counter[str] = Counter()
    for cell in bench_cells(recipe):
        quotas[cell.task] += cell.quota
    groups = Figure(0.0, 0.0, 0.0)
    renders = Figure(0.0, 0.0, 0.0)
    pairs = {}
    for task, quota in quotas.items():
        passed, tried = pilot.bench.get(task, (0, 0)) if pilot else (0, 0)
        if tried:
            accept = wilson(passed, tried)
        else:
            accept = Figure(oversample.initial_acceptance, oversample.initial_acceptance, 1.0)
            if pilot is not None:
                notes.append(
                    f"the pilot has no bench {task} groups: its acceptance is the prior "
                    f"bench.oversample.initial_acceptance ({oversample.initial_acceptance})"
                )
        ceiling = quota * oversample.max_groups_per_sample

        def need(rate: float | None, quota: int = quota, ceiling: float = ceiling) -> float:
            return ceiling if not rate else min(ceiling, quota / rate)

        # a higher acceptance needs fewer groups: the interval's ends swap
        task_groups = Figure(need(accept.value), need(accept.high), need(accept.low))
        groups = groups.plus(task_groups)
        size = renders_per_group(recipe, TASKS[task].group_kind)
        renders = renders.plus(task_groups.scaled(size))
        filled = [min(quota, g * r) for g, r in ((ceiling, accept.value), (ceiling, accept.low))]
        pairs[task] = Figure(filled[0], filled[1] or 0.0, quota)
    if pilot is None:
        return Figure(groups.value), Figure(renders.value), {t: Figure(quotas[t]) for t in quotas}
    return groups, renders, pairs


def _calls(
    pilot: Pilot | None, stage: str, units: Figure, enabled: bool, per_renders: bool = True
) -> Figure:
    """API calls of a stage: the pilot's calls per render (per bench group for the judge)
    times the plan's, one call each by default."""
    if not enabled:
        return Figure(0.0, 0.0, 0.0)
    used = (pilot.api.get(stage) or {}) if pilot else {}
    calls = used.get("calls", 0) + used.get("cached", 0)
    if pilot and calls and per_renders and pilot.rendered:
        return units.scaled(calls / pilot.rendered)
    return units


def _tokens(pilot: Pilot | None, stage: str, prior: tuple[int, int]) -> tuple[float, float]:
    used = (pilot.api.get(stage) or {}) if pilot else {}
    calls = used.get("calls", 0)
    if not calls:
        return float(prior[0]), float(prior[1])
    return used["input_tokens"] / calls, used["output_tokens"] / calls


@dataclass
class GroupsFor:
    """How many groups of each kind to ask for to reach pair targets."""

    groups: dict[str, int]
    """At the measured (or prior) rates."""
    safe: dict[str, int] | None
    """At the low end of the rates' 95% intervals (each target met with ~97.5% odds);
    None when a rate's interval reaches 0 (the pilot is too small to bound it)."""


def groups_for(estimate: Estimate, recipe: Recipe, targets: dict[str, int]) -> GroupsFor:
    """Groups to ask for (`groups_to_reach`) at the pilot's rates and at their lows."""

    def rate(task: str, kind: str, low: bool) -> float:
        figure = estimate.pairs_per_group.get(task, {}).get(kind)
        if figure is None:
            return 0.0
        return figure.low if low and figure.low is not None else figure.value

    groups = groups_to_reach(recipe, targets, lambda t, k: rate(t, k, False))
    try:
        safe: dict[str, int] | None = groups_to_reach(
            recipe, targets, lambda t, k: rate(t, k, True)
        )
    except DatapipeError:
        safe = None
    return GroupsFor(groups=groups, safe=safe)


def parse_targets(values: list[str], recipe: Recipe) -> dict[str, int]:
    """`TASK=N` items (repeated or comma-separated) -> {task: N}, checked against the
    recipe's enabled train tasks."""
    enabled = recipe.split_tasks("train").enabled()
    targets = {}
    for item in (p for v in values for p in v.replace(",", " ").split()):
        task, _, number = item.partition("=")
        if task not in enabled or not number.isdigit() or int(number) < 1:
            raise DatapipeError(
                f"--target-pairs {item!r}: expected TASK=N with N >= 1 and TASK one of "
                f"{', '.join(enabled)}",
                fix="e.g. --target-pairs extend=1000 --target-pairs style=200",
            )
        targets[task] = int(number)
    return targets


def _pilot_notes(est: Estimate) -> list[str]:
    """Where this pilot leaves a task's pairs wider than +-WITHIN: the pilot that would
    not, or that none would (the run's own chance is wider)."""
    notes = []
    for task, chance in est.chance.items():
        figure = est.pairs["train"][task]
        if figure.low is None or figure.high is None or not figure.value:
            continue
        half = (figure.high - figure.low) / 2 / figure.value
        if half <= WITHIN:
            continue
        need = est.pilot_for(task)
        total = sum(est.groups.values())
        if need is None:
            why = f"its groups' own chance is +-{chance / figure.value:.0%}, so no pilot does"
        elif need >= total:
            why = f"a pilot would need more groups than the run has ({total})"
        else:
            why = f"a pilot of ~{need} groups would"
        notes.append(f"{task} +-{half:.0%}; to bound it to +-{WITHIN:.0%}, {why}")
    return notes


def tables(est: Estimate, wanted: GroupsFor | None, targets: dict[str, int]) -> list[Table]:
    """The plan as the CLI prints it: totals, pairs per task and split, and targets."""
    totals = Table(title="plan", show_header=False)
    totals.add_column("")
    totals.add_column("", justify="right")
    groups = ", ".join(f"{k} {n}" for k, n in est.groups.items() if n)
    totals.add_row("train groups", f"{sum(est.groups.values())} ({groups})")
    if est.targets is not None:
        rounds = est.targets
        later = Figure(0.0, 0.0, 0.0)
        for figure in rounds.extra.values():
            later = later.plus(figure)
        kinds = ", ".join(f"{k} {f.value:.0f}" for k, f in rounds.extra.items())
        totals.add_row(
            "later rounds (targets)",
            f"{later.text()} groups{f' ({kinds})' if kinds else ''}; "
            f"{rounds.rounds} round(s) expected, at most {rounds.max_rounds}",
        )
    if est.bench_groups is not None:
        totals.add_row("bench groups", est.bench_groups.text())
    totals.add_row("renders", est.renders.text())
    totals.add_row("LLM calls", est.llm_calls.text())
    totals.add_row("judge calls", est.judge_calls.text())
    totals.add_row(f"{est.device}-seconds per render", f"{est.seconds_per_render:.3g}")
    if est.device != "gpu":
        totals.add_row(f"{est.device}-hours", est.device_hours.text(".3g"))
    totals.add_row("GPU-hours", est.gpu_hours.text(".3g"))
    totals.add_row("USD", est.usd.text(".2f"))
    worker = "GPUs" if est.device == "gpu" else "CPU workers"
    totals.add_row(f"wall hours on {est.workers} {worker}", est.wall_hours.text(".3g"))
    totals.caption = escape(f"from {est.basis}; [low, high]: 95% intervals")
    pairs = Table(title="expected pairs")
    for column in ("split", "task", "pairs [95%]", "per group of each kind"):
        pairs.add_column(column, justify="right" if column.startswith("pairs") else "left")
    for split, by_task in est.pairs.items():
        for task, figure in by_task.items():
            rates = est.pairs_per_group.get(task, {}) if split == "train" else {}
            per = ", ".join(f"{k} {f.value:.2f}" for k, f in rates.items())
            target = est.targets.wanted.get(task) if est.targets and split == "train" else None
            shown = figure.text() + (f" (target {target})" if target else "")
            pairs.add_row(split, task, shown, per)
    keep = ", ".join(
        f"{v} {f.value:.0%}" for values in est.keep_rates.values() for v, f in values.items()
    )
    pairs.caption = escape(
        f"keep rate: {keep}" + "".join(f"; {n}" for n in est.notes + _pilot_notes(est))
    )
    out = [totals, pairs]
    if wanted is not None:
        table = Table(title="groups to ask for")
        for column in ("kind", "at the measured rates", "to meet every target (95%)"):
            table.add_column(column, justify="left" if column == "kind" else "right")
        for kind in GROUP_KINDS:
            safe = "-" if wanted.safe is None else str(wanted.safe[kind])
            table.add_row(kind, str(wanted.groups[kind]), safe)
        table.caption = "targets: " + ", ".join(f"{t} {n}" for t, n in targets.items())
        if wanted.safe is None:
            table.caption += "; a rate's 95% interval reaches 0: run a larger pilot to bound it"
        out.append(table)
    return out
