"""Which stages a recipe runs, in order, which scores they make available, and which
part of the recipe each is handed: the one place that reads the whole recipe for them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datapipe.backends.template_composer import TemplateComposer
from datapipe.bench import BenchState
from datapipe.errors import RecipeError
from datapipe.libraries import LoadedRecipe
from datapipe.recipe import Recipe
from datapipe.stages.base import Stage
from datapipe.stages.bench import BenchSettings, BenchStage
from datapipe.stages.clip import ClipStage
from datapipe.stages.filter import FilterStage
from datapipe.stages.image_check import ImageStage
from datapipe.stages.near_duplicates import NearDuplicates, NearDuplicateStage
from datapipe.stages.ocr import OcrStage
from datapipe.stages.phash import PhashStage
from datapipe.stages.prompt import PromptSettings, PromptStage
from datapipe.stages.quality import QualityStage
from datapipe.stages.render import RenderSettings, RenderStage
from datapipe.stages.subject import SubjectStage
from datapipe.stages.tasks import TaskStage
from datapipe.tasks.common import TaskContext


def annotator_classes(recipe: Recipe) -> list[type[Stage]]:
    """Annotators run after the render and before the candidate store commit."""
    stages = recipe.stages
    classes: list[type[Stage]] = [ImageStage, OcrStage]
    if stages.quality.enabled:
        classes.append(QualityStage)
    classes.append(SubjectStage)
    if stages.phash.enabled:
        classes.append(PhashStage)
    if stages.clip.enabled:
        classes.append(ClipStage)
    return classes


def candidate_stage_classes(recipe: Recipe) -> list[type[Stage]]:
    """Everything up to the candidate store: the part that costs GPU time."""
    return [PromptStage, RenderStage, *annotator_classes(recipe)]


CANDIDATE_SETTINGS: dict[str, Callable[[LoadedRecipe], Any]] = {
    PromptStage.name: lambda loaded: PromptSettings(
        loaded.recipe.stages.prompt, TemplateComposer(loaded), loaded.library.folders.prompts
    ),
    RenderStage.name: lambda loaded: RenderSettings(loaded.recipe.stages.render, loaded.library),
    ImageStage.name: lambda loaded: loaded.recipe.stages.render,
    OcrStage.name: lambda loaded: loaded.recipe.stages.ocr,
    QualityStage.name: lambda loaded: loaded.recipe.stages.quality,
    SubjectStage.name: lambda loaded: loaded.recipe.stages.subject,
    PhashStage.name: lambda loaded: loaded.recipe.stages.phash,
    ClipStage.name: lambda loaded: loaded.recipe.stages.clip,
}
"""Each candidate stage's own settings (the image check re-encodes as the renderer does)."""


def stage_settings(cls: type[Stage], loaded: LoadedRecipe) -> Any:
    """What a candidate stage of this class is handed: its settings, never the recipe."""
    return CANDIDATE_SETTINGS[cls.name](loaded)


def build_stage(cls: type[Stage], loaded: LoadedRecipe, out: Path | None = None) -> Stage:
    return cls(stage_settings(cls, loaded), out)


def build_candidate_stages(loaded: LoadedRecipe, out: Path | None = None) -> list[Stage]:
    return [build_stage(cls, loaded, out) for cls in candidate_stage_classes(loaded.recipe)]


def build_annotators(loaded: LoadedRecipe) -> list[Stage]:
    """The stages after the render, outside a run (`datapipe score`)."""
    return [build_stage(cls, loaded) for cls in annotator_classes(loaded.recipe)]


def near_duplicates(loaded: LoadedRecipe) -> NearDuplicates:
    """An empty index of kept hashes for an output, with each split's distance."""
    recipe = loaded.recipe
    return NearDuplicates({s: recipe.near_duplicate_distance(s) for s in ("train", "bench")})


@dataclass(frozen=True)
class DatasetStages:
    """The stages after the candidate store, by phase: `verdict` (filter, near-duplicates)
    runs over every group in order; `build` (tasks, and the bench) makes the samples."""

    verdict: list[Stage]
    build: list[Stage]

    @property
    def all(self) -> list[Stage]:
        return [*self.verdict, *self.build]


def build_dataset_stages(
    loaded: LoadedRecipe,
    out: Path | None = None,
    split: str = "train",
    seen: NearDuplicates | None = None,
    bench: BenchState | None = None,
    only: set[str] | None = None,
) -> DatasetStages:
    """After the candidate store: re-runnable from stored scores without rendering.

    `seen` holds the kept hashes both splits check against (one per output); `bench`
    the bench quotas; `only` limits the task builders (regenerating one task)."""
    seen = seen or near_duplicates(loaded)
    build: list[Stage] = [TaskStage(TaskContext.of(loaded, split), out, only)]
    if split == "bench":
        recipe_bench = loaded.recipe.bench
        if recipe_bench is None:
            raise ValueError(f"{loaded.path}: no bench section, so no bench split to build")
        settings = BenchSettings(recipe_bench, loaded.library.folders.prompts)
        build.append(BenchStage(settings, bench or BenchState(loaded), out))
    return DatasetStages(
        verdict=[
            FilterStage(loaded.recipe.split_thresholds(split), out),
            NearDuplicateStage(seen, out, split),
        ],
        build=build,
    )


def produced_scores(recipe: Recipe) -> set[str]:
    return {score for cls in candidate_stage_classes(recipe) for score in cls.produces}


def check_recipe(recipe: Recipe, path: Path) -> None:
    """Names the recipe uses that only the stage registry can check."""
    check_thresholds(recipe, path)
    names = [cls.name for cls in candidate_stage_classes(recipe)]
    for name in recipe.execution.stages:
        if name not in names:
            raise RecipeError(
                f"{path}: execution.stages.{name}: no such stage in this recipe",
                fix=f"use one of {', '.join(names)} (filter, tasks and shards run on the driver)",
            )


def check_thresholds(recipe: Recipe, path: Path) -> None:
    """A threshold on a score no enabled stage writes would reject everything: refuse it."""
    available = produced_scores(recipe)
    rules = [("thresholds", recipe.thresholds)]
    if recipe.bench is not None:
        rules.append(("bench.thresholds", recipe.bench.thresholds))
    for where, table in rules:
        for reason, rule in table.items():
            if rule.score not in available:
                raise RecipeError(
                    f"{path}: {where}.{reason}.score: no enabled stage writes {rule.score!r}",
                    fix=f"use one of {', '.join(sorted(available))}",
                )
