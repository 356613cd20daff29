"""Loading a recipe: read its file, validate it against the schema, resolve and load the
libraries it names, and check that its stages can produce every score it thresholds.

It sits above the stages (it asks their registry what each produces), so the schema in
`datapipe.recipe` stays importable by every layer below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from datapipe.bundled import find_recipe
from datapipe.errors import RecipeError
from datapipe.libraries import Library, LoadedRecipe, read_libraries
from datapipe.reading import read_yaml, shown, validation_message
from datapipe.recipe import Libraries, Recipe
from datapipe.stages.registry import check_recipe
from datapipe.tasks.registry import TASKS


def parse_recipe(data: Any, path: Path) -> Recipe:
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of keys, got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        raise RecipeError(validation_message(path, exc, Recipe)) from None


def resolve_libraries(recipe: Recipe, path: Path) -> Libraries:
    base = path.parent
    resolved = {}
    for field in ("entities", "styles", "prompts"):
        folder = (base / getattr(recipe.libraries, field)).resolve()
        if not folder.is_dir():
            raise RecipeError(
                f"{path}: libraries.{field}: folder {shown(folder)} does not exist",
                fix="paths are relative to the recipe file",
            )
        resolved[field] = folder
    return Libraries(**resolved)


def instructions_used() -> dict[str, set[str]]:
    """Every instruction template key the tasks use, with the placeholders it may hold."""
    return {
        key: set(allowed) for row in TASKS.values() for key, allowed in row.instructions.items()
    }


def load_libraries(paths: Libraries) -> Library:
    """The libraries, with the instruction templates checked against what each task's
    registry row says it uses."""
    return read_libraries(paths, instructions_used())


def load_recipe(path: str | Path) -> LoadedRecipe:
    """Read, validate and hash a recipe (a file, or a shipped recipe's name) together with
    the libraries it names."""
    recipe_path = find_recipe(path)
    recipe = parse_recipe(read_yaml(recipe_path, RecipeError), recipe_path)
    libs = resolve_libraries(recipe, recipe_path)
    library = load_libraries(libs)
    missing = [t for t in recipe.themes if t not in library.entities_by_theme]
    if missing:
        raise RecipeError(
            f"{recipe_path}: themes: no entity library for {', '.join(missing)} in {libs.entities}",
            fix=f"add {missing[0]}.yaml there or remove the theme from the recipe",
        )
    smallest = min(len(library.entities_by_theme[t]) for t in recipe.themes)
    largest_group = max(recipe.group_size.style, recipe.group_size.layout)
    if largest_group > min(smallest, len(library.styles)):
        raise RecipeError(
            f"{recipe_path}: group_size: groups of {largest_group} need as many distinct entities "
            f"per theme and styles (the libraries have {smallest} and {len(library.styles)})"
        )
    check_recipe(recipe, recipe_path)
    _check_mask_tasks(recipe, recipe_path)
    return LoadedRecipe(recipe=recipe, path=recipe_path, library=library)


def _check_mask_tasks(recipe: Recipe, path: Path) -> None:
    """bench.require_masks may name only tasks whose samples use a subject mask."""
    if recipe.bench is None:
        return
    allowed = [name for name, row in TASKS.items() if row.subject_mask]
    for i, task in enumerate(recipe.bench.require_masks):
        if task not in allowed:
            raise RecipeError(
                f"{path}: bench.require_masks[{i}]: {task!r} samples use no subject mask",
                fix=f"name only {', '.join(allowed)}",
            )
