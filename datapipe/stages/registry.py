"""Which stages a recipe runs, in order, and which scores they make available."""

from __future__ import annotations

from pathlib import Path

from datapipe.errors import RecipeError
from datapipe.recipe import LoadedRecipe, Recipe
from datapipe.stages.base import Stage
from datapipe.stages.clip import ClipStage
from datapipe.stages.filter import FilterStage
from datapipe.stages.image_check import ImageStage
from datapipe.stages.ocr import OcrStage
from datapipe.stages.phash import PhashStage
from datapipe.stages.prompt import PromptStage
from datapipe.stages.quality import QualityStage
from datapipe.stages.render import RenderStage
from datapipe.stages.subject import SubjectStage
from datapipe.stages.tasks import TaskStage


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


def build_candidate_stages(loaded: LoadedRecipe, out: Path | None = None) -> list[Stage]:
    return [cls(loaded, out) for cls in candidate_stage_classes(loaded.recipe)]


def build_dataset_stages(loaded: LoadedRecipe) -> list[Stage]:
    """After the candidate store: re-runnable from stored scores without rendering."""
    return [FilterStage(loaded), TaskStage(loaded)]


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
    for reason, rule in recipe.thresholds.items():
        if rule.score not in available:
            raise RecipeError(
                f"{path}: thresholds.{reason}.score: no enabled stage writes {rule.score!r}",
                fix=f"use one of {', '.join(sorted(available))}",
            )
