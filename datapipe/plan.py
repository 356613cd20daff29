"""Which group sits at which index: the plan every runner follows.

Kinds, languages and themes are spread so that every prefix of the plan (a `--limit`
run, the first blocks of a long job) already holds a balanced mix, and the plan is a
pure function of the recipe, so a rerun or another worker sees the same one.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from datapipe.coverage import Coverage, CoverageFloor, coverage_floor
from datapipe.errors import DatapipeError
from datapipe.hashing import group_id
from datapipe.libraries import LoadedRecipe
from datapipe.recipe import GROUP_KINDS, Recipe
from datapipe.records import Group
from datapipe.tasks.registry import TASKS


@dataclass(frozen=True)
class GroupSlot:
    index: int
    kind: str
    language: str
    theme: str
    group_id: str
    block: int

    def to_group(self) -> Group:
        return Group(
            group_id=self.group_id,
            kind=self.kind,
            index=self.index,
            block=self.block,
            language=self.language,
            theme=self.theme,
        )


def _by_deficit(weights: dict[str, float], n: int) -> list[str]:
    """n labels in proportion to weights, interleaved (largest running deficit first)."""
    total = sum(weights.values())
    counts = dict.fromkeys(weights, 0)
    out = []
    for i in range(1, n + 1):
        label = max(weights, key=lambda k: (weights[k] / total * i - counts[k], weights[k]))
        counts[label] += 1
        out.append(label)
    return out


def _themes(recipe: Recipe) -> list[str]:
    themes = list(recipe.themes)
    random.Random(recipe.seed).shuffle(themes)
    return themes


def plan_groups(loaded: LoadedRecipe, limit: int | None = None) -> list[GroupSlot]:
    """The ordered groups of a run; `limit` keeps a prefix (ids do not change)."""
    recipe = loaded.recipe
    counts = recipe.groups.model_dump()
    total = sum(counts.values())
    kinds = _by_deficit({k: counts[k] for k in GROUP_KINDS if counts[k]}, total)
    slots = _slots(loaded, kinds, dict.fromkeys(GROUP_KINDS, 0), first_index=0, first_block=0)
    return slots if limit is None else slots[:limit]


def more_groups(
    loaded: LoadedRecipe,
    allocation: dict[str, int],
    planned: dict[str, int],
    first_index: int,
    first_block: int,
) -> dict[int, list[Group]]:
    """A later round of train groups, by block: `allocation[kind]` more groups of each
    kind, interleaved, numbered from `first_index` and `first_block`. Each kind's
    languages and themes go on from its `planned` groups (the plan's rotation continues),
    so every round holds the recipe's mix."""
    total = sum(allocation.values())
    kinds = _by_deficit({k: n for k, n in allocation.items() if n}, total)
    blocks: dict[int, list[Group]] = {}
    for slot in _slots(loaded, kinds, planned, first_index, first_block):
        blocks.setdefault(slot.block, []).append(slot.to_group())
    return blocks


def _slots(
    loaded: LoadedRecipe,
    kinds: list[str],
    planned: dict[str, int],
    first_index: int,
    first_block: int,
) -> list[GroupSlot]:
    """Slots for `kinds` in order: a kind's n-th group (counted from `planned[kind]`) takes
    the n-th language of the recipe's weights and, per kind and language, the next theme
    in the recipe's shuffled order."""
    recipe = loaded.recipe
    themes = _themes(recipe)
    wanted = Counter(kinds)
    languages = {}
    seen: Counter[tuple[str, str]] = Counter()
    for kind, n in wanted.items():
        sequence = _by_deficit(dict(recipe.languages), planned[kind] + n)
        seen.update((kind, language) for language in sequence[: planned[kind]])
        languages[kind] = iter(sequence[planned[kind] :])
    slots = []
    for position, kind in enumerate(kinds):
        language = next(languages[kind])
        theme = themes[seen[(kind, language)] % len(themes)]
        seen[(kind, language)] += 1
        index = first_index + position
        slots.append(
            GroupSlot(
                index=index,
                kind=kind,
                language=language,
                theme=theme,
                group_id=group_id(loaded.generation_hash, kind, index),
                block=first_block + position // recipe.block_size,
            )
        )
    return slots


@dataclass(frozen=True)
class BenchCell:
    """One quota of the bench split: samples of a task, language and theme."""

    task: str
    language: str
    theme: str
    quota: int

    @property
    def key(self) -> str:
        return f"{self.task}/{self.language}/{self.theme}"

    def group(self, generation_hash: str, n: int, index: int, block: int) -> Group:
        """The cell's n-th group: its id (and so its seeds) depends on the cell and n only."""
        return Group(
            group_id=f"bench-{self.task}-{self.language}-{self.theme}-"
            f"{generation_hash[:8]}-{n:06d}",
            kind=TASKS[self.task].group_kind,
            index=index,
            block=block,
            language=self.language,
            theme=self.theme,
            split="bench",
            task=self.task,
        )


def bench_cells(recipe: Recipe) -> list[BenchCell]:
    """Every quota: per task, each language's count spread over the themes so that no two
    themes differ by more than one (the extra ones rotate, so they even out over tasks)."""
    if recipe.bench is None:
        return []
    themes = list(recipe.themes)
    cells = []
    for t, task in enumerate(recipe.bench_tasks()):
        for lang_index, (language, total) in enumerate(recipe.bench.quotas.items()):
            base, extra = divmod(total, len(themes))
            start = (t * len(recipe.bench.quotas) + lang_index) * extra
            for i, theme in enumerate(themes):
                bonus = 1 if (i - start) % len(themes) < extra else 0
                if base + bonus:
                    cells.append(BenchCell(task, language, theme, base + bonus))
    return cells


def train_blocks(loaded: LoadedRecipe) -> int:
    """Blocks of the full train plan; bench blocks are numbered after them."""
    total = sum(loaded.recipe.groups.model_dump().values())
    return -(-total // loaded.recipe.block_size)


def renders_per_group(recipe: Recipe, kind: str) -> int:
    return {"single": 1, "rescale": 2}.get(kind) or getattr(recipe.group_size, kind)


PER_POSTER_TASKS = tuple(name for name, row in TASKS.items() if row.per == "poster")
"""Tasks every kept render of any group kind can give a sample of (the others come from
the pairs of their own group kind)."""

Rate = Callable[[str, str], float]
"""(task, group kind) -> pairs of the task per group of the kind."""


def prior_pairs_per_group(recipe: Recipe, task: str, kind: str) -> float:
    """With every render kept at the prior rate and no builder refusing a pair: a kept
    render gives one sample of each per-poster task; a pair task needs two kept members
    and then makes one pair per kept member."""
    return possible_pairs(task, renders_per_group(recipe, kind), recipe.costs.priors.keep_rate)


def possible_pairs(task: str, size: int, keep: float) -> float:
    """Pairs a group of `size` renders can give a task when each render is kept with
    probability `keep`: a sample per kept render for a per-poster task; for a pair task,
    one per kept member once two are kept (the expected kept count, less the case of one)."""
    if task in PER_POSTER_TASKS:
        return size * keep
    return size * keep - size * keep * (1 - keep) ** (size - 1)


def groups_to_reach(recipe: Recipe, targets: dict[str, int], rate: Rate) -> dict[str, int]:
    """Groups of each kind that make `targets[task]` pairs at `rate`: the planner's next
    train round and `datapipe plan --target-pairs` both ask this. Pair tasks set their own
    group kind's count; the per-poster tasks' shortfall is then made up with single groups
    (the cheapest: one render each), or, in a recipe without them, by scaling every kind
    alike. Raises when a target cannot be reached at these rates."""
    counts = dict.fromkeys(GROUP_KINDS, 0)
    for task, wanted in targets.items():
        if task not in PER_POSTER_TASKS:
            kind = TASKS[task].group_kind
            counts[kind] = max(counts[kind], _groups_needed(task, kind, wanted, rate(task, kind)))
    for task, wanted in targets.items():
        if task not in PER_POSTER_TASKS:
            continue
        short = wanted - sum(n * rate(task, k) for k, n in counts.items())
        if short <= 0:
            continue
        if rate(task, "single") > 0:
            counts["single"] += _groups_needed(task, "single", short, rate(task, "single"))
            continue
        mix = {k: n for k, n in recipe.groups.model_dump().items() if n}
        per_mix = sum(n * rate(task, k) for k, n in mix.items())
        if per_mix <= 0:
            raise DatapipeError(
                f"pair target {task}: no group kind of this recipe made a {task} pair",
                fix="check the pilot's rejects, or enable the task",
            )
        for k, n in mix.items():
            counts[k] += math.ceil(n * short / per_mix)
    return counts


def _groups_needed(task: str, kind: str, wanted: float, rate: float) -> int:
    if rate <= 0:
        raise DatapipeError(
            f"pair target {task}: {kind} groups made no {task} pair at the measured rate, "
            "so no number of groups reaches the target",
            fix="check the rejects (datapipe inspect), or run a larger pilot",
        )
    return math.ceil(wanted / rate)


def recipe_entities(loaded: LoadedRecipe) -> list[str]:
    """Every entity a recipe can draw: those of its themes."""
    library = loaded.library
    return sorted({e.id for t in loaded.recipe.themes for e in library.entities_by_theme[t]})


def recipe_coverage_floor(found: Coverage, loaded: LoadedRecipe) -> CoverageFloor | None:
    """The recipe's `coverage.min_samples_per_entity_task` checked over every entity of
    its themes x every enabled task (of either split); None when it sets no floor."""
    floor = loaded.recipe.coverage.min_samples_per_entity_task
    if not floor:
        return None
    recipe = loaded.recipe
    tasks = sorted(set(recipe.split_tasks("train").enabled()) | set(recipe.bench_tasks()))
    return coverage_floor(found, recipe_entities(loaded), tasks, floor)
