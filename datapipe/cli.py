"""The `datapipe` command line.

Errors that datapipe raises on purpose (a bad recipe, a missing package, an output
directory of another recipe) are printed as one line and exit with status 2; a
traceback means a bug.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from datapipe.errors import DatapipeError
from datapipe.recipe import load_recipe
from datapipe.runner.local import run_local
from datapipe.runner.summary import RunSummary

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Build paired image-to-poster training data as WebDataset shards.",
)
console = Console(stderr=True)


def fail(error: DatapipeError) -> None:
    console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML, e.g. pipelines/quickstart.yaml"),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory"),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Run only the first N groups"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress line"),
) -> None:
    """Run a recipe end to end on this machine and print a summary."""
    try:
        loaded = load_recipe(recipe)
        with Progress(
            TextColumn("[bold]groups"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
        ) as bar:
            task = bar.add_task("run", total=None, status="starting")
            began = time.perf_counter()

            def report(summary: RunSummary, total: int) -> None:
                rate = summary.renders / max(1e-9, time.perf_counter() - began)
                kept = summary.kept / summary.renders if summary.renders else 0.0
                status = (
                    f"{rate:.1f} renders/s  kept {kept:.0%}  pairs {sum(summary.pairs.values())}"
                )
                bar.update(task, completed=summary.groups, total=total, status=status)
                if not console.is_terminal and not quiet:
                    console.print(f"groups {summary.groups}/{total}  {status}", highlight=False)

            summary = run_local(loaded, out, limit=limit, progress=report)
    except DatapipeError as error:
        fail(error)
        return
    output = Console()
    for table in summary.tables():
        output.print(table)
    output.print(
        f"wrote {out} in {summary.wall_seconds:.0f} s (recipe hash {loaded.recipe_hash[:12]})"
    )


@app.command()
def validate(recipe: Path = typer.Argument(..., help="Recipe YAML")) -> None:
    """Check a recipe and its libraries without running anything."""
    try:
        loaded = load_recipe(recipe)
    except DatapipeError as error:
        fail(error)
        return
    library = loaded.library
    entities = sum(len(v) for v in library.entities_by_theme.values())
    Console().print(
        f"ok: {recipe}: {sum(loaded.recipe.groups.model_dump().values())} groups; "
        f"{entities} entities in {len(library.entities_by_theme)} themes, "
        f"{len(library.styles)} styles, {len(library.layouts)} layouts; "
        f"recipe hash {loaded.recipe_hash[:12]}",
        highlight=False,
    )


if __name__ == "__main__":
    app()
