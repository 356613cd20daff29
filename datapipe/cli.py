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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from datapipe.cli_errors import console, fail
from datapipe.cli_inspect import register
from datapipe.errors import DatapipeError
from datapipe.io.layout import OutputLayout
from datapipe.loading import load_recipe
from datapipe.runner.local import run_local
from datapipe.runner.summary import RunSummary

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Build paired image-to-poster training data as WebDataset shards.",
)


@app.command()
def run(
    recipe: Path = typer.Argument(..., help="Recipe YAML, e.g. pipelines/quickstart.yaml"),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory"),
    limit: int | None = typer.Option(
        None,
        "--limit",
        min=1,
        help="Run only the first N train groups (a bench still fills its quotas)",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress line"),
    use_ray: bool = typer.Option(False, "--ray", help="Run the stages as Ray Data actor pools"),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)"
    ),
) -> None:
    """Run a recipe end to end and print a summary; rerun the same command to resume.

    Blocks a previous run committed are kept; the rest are finished. A directory holding
    another recipe's output is refused.
    """
    try:
        loaded = load_recipe(recipe)
        with Progress(
            TextColumn("[bold]groups"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
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

            if use_ray or address:
                from datapipe.runner.ray_runner import run_ray

                summary = run_ray(loaded, out, limit=limit, address=address, progress=report)
            else:
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
    report_unfilled(out, output)


def report_unfilled(out: Path, output: Console) -> None:
    """Say which bench quotas could not be filled, and why (run.json has the details)."""
    try:
        bench = OutputLayout(out).read_run().get("bench") or {}
    except (OSError, ValueError):
        return
    for row in bench.get("unfilled", []):
        where = f"{row['task']}/{row['language']}/{row['theme']}"
        output.print(f"[yellow]bench quota {escape(where)} not filled:[/] {escape(row['why'])}")


@app.command()
def verify(out: Path = typer.Argument(..., help="Output directory of a run")) -> None:
    """Check an output: manifests against tars, keys, stats, ledgers, pair invariants.

    Prints a report and exits with status 1 on any fault.
    """
    from rich.table import Table

    from datapipe.verify import MAX_LISTED
    from datapipe.verify import verify as run_checks

    checks = run_checks(out)
    output = Console()
    table = Table(title=f"verify {out}")
    for column in ("check", "checked", "faults"):
        table.add_column(column, justify="left" if column == "check" else "right")
    for check in checks:
        style = "red" if check.faults else "green"
        table.add_row(check.name, str(check.checked), f"[{style}]{len(check.faults)}[/]")
    output.print(table)
    faults = [(c.name, f) for c in checks for f in c.faults[:MAX_LISTED]]
    for name, fault in faults:
        output.print(f"[red]{name}:[/] {escape(fault)}", highlight=False, soft_wrap=True)
    total = sum(len(c.faults) for c in checks)
    if total:
        output.print(f"[bold red]{total} faults[/]")
        raise typer.Exit(code=1)
    output.print("[bold green]clean[/]")


@app.command()
def regen(
    out: Path = typer.Option(..., "--out", "-o", help="Output directory of a finished run"),
    task: str = typer.Option(..., "--task", help="Task whose split to rebuild"),
    split: str = typer.Option("train", "--split", help="Split to rebuild"),
    recipe: Path | None = typer.Option(
        None, "--recipe", help="Recipe with the new thresholds (default: the run's own)"
    ),
    rerender: bool = typer.Option(
        False,
        "--rerender",
        help="Also render the groups the task now lacks (bench: its short quotas; train: "
        "groups that lost their sample), with new seeds",
    ),
) -> None:
    """Rebuild one task's split from the candidate store under the recipe's thresholds.

    Without --rerender nothing is rendered: the stored renders and scores are filtered
    again and the task's pairs rebuilt; the old shards are replaced atomically, other
    tasks and splits are untouched.
    """
    from datapipe.regen import regen as rebuild

    try:
        report = rebuild(out, task, split, recipe, rerender=rerender)
    except DatapipeError as error:
        fail(error)
        return
    Console().print(
        f"regenerated {report.split}/{report.task} from {report.blocks} blocks: "
        f"{report.samples_before} -> {report.samples_after} samples in {report.shards} shards "
        f"({report.seconds:.1f} s, "
        + (f"{report.rendered} renders)" if report.rendered else "no render)"),
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def doctor(
    recipe: Path = typer.Argument(..., help="Recipe YAML"),
    devices: bool = typer.Option(True, help="Also check the GPUs the stages ask for"),
) -> None:
    """Check that every stage of a recipe can run here: packages, weights, keys, devices.

    Exits with status 1 when something is missing, naming the fix for each piece.
    """
    from rich.table import Table

    from datapipe.doctor import Doctor

    try:
        loaded = load_recipe(recipe)
    except DatapipeError as error:
        fail(error)
        return
    findings = Doctor(loaded, devices=devices).check()
    table = Table(title=f"doctor {recipe}")
    for column in ("stage", "check", "", "detail", "fix"):
        table.add_column(column)
    for f in findings:
        mark = "[green]ok[/]" if f.ok else "[red]missing[/]"
        table.add_row(f.stage, f.what, mark, f.detail, f.fix)
    output = Console()
    output.print(table)
    missing = sum(not f.ok for f in findings)
    if missing:
        output.print(f"[bold red]{missing} missing: this recipe cannot run here[/]")
        raise typer.Exit(code=1)
    output.print("[bold green]ready[/]")


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


register(app)

if __name__ == "__main__":
    app()
