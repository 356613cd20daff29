"""Which group sits at which index: the plan every runner follows.

Kinds, languages and themes are spread so that every prefix of the plan (a `--limit`
run, the first blocks of a long job) already holds a balanced mix, and the plan is a
pure function of the recipe, so a rerun or another worker sees the same one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from datapipe.coverage import Coverage, CoverageFloor, coverage_floor
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


def plan_groups(loaded: LoadedRecipe, limit: int | None = None) -> list[GroupSlot]:
    """The ordered groups of a run; `limit` keeps a prefix (ids do not change)."""
    recipe = loaded.recipe
    counts = recipe.groups.model_dump()
    total = sum(counts.values())
    kinds = _by_deficit({k: counts[k] for k in GROUP_KINDS if counts[k]}, total)
    themes = list(recipe.themes)
    languages = {k: iter(_by_deficit(dict(recipe.languages), counts[k])) for k in GROUP_KINDS}
    rng = random.Random(recipe.seed)
    rng.shuffle(themes)
    seen: dict[tuple[str, str, str], int] = {}
    slots = []
    for index, kind in enumerate(kinds):
        language = next(languages[kind])
        theme = min(themes, key=lambda t: (seen.get((kind, language, t), 0), themes.index(t)))
        seen[(kind, language, theme)] = seen.get((kind, language, theme), 0) + 1
        slots.append(
            GroupSlot(
                index=index,
                kind=kind,
                language=language,
                theme=theme,
                group_id=group_id(loaded.generation_hash, kind, index),
                block=index // recipe.block_size,
            )
        )
    return slots if limit is None else slots[:limit]


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
