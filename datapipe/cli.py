"""The `datapipe` command line.

Errors that datapipe raises on purpose (a bad recipe, a missing package, an output
directory of another recipe) are printed as one line and exit with status 2; a
traceback means a bug.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

import datapipe
from datapipe.cli_errors import console, fail
from datapipe.cli_inspect import register
from datapipe.doctor import preflight
from datapipe.errors import DatapipeError
from datapipe.io.layout import OutputLayout
from datapipe.libraries import LoadedRecipe
from datapipe.loading import load_recipe
from datapipe.recipe import ALL_TASKS
from datapipe.run_log import ray_output_to, run_log
from datapipe.runner.local import run_local
from datapipe.runner.output import check_out_dir
from datapipe.runner.summary import RunSummary

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Build paired image-to-poster training data as WebDataset shards.",
)

SPLIT_NAMES = ("train", "bench")
UNFINISHED = 3
"""`verify`'s exit status for a sound output of a run that has not finished."""
BUDGET_HELP = "Budget cap for the whole output (overrides execution.budget); see `datapipe run`"
INTERRUPTED = 130
"""Exit status after Ctrl-C, as a shell reports a SIGINT."""


def show_version(value: bool) -> None:
    if value:
        Console().print(f"datapipe {datapipe.__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        callback=show_version,
        is_eager=True,
        help="Print the datapipe version and exit",
    ),
) -> None:
    """Build paired image-to-poster training data as WebDataset shards."""


def choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    """Typer's enum choices would make these str-Enums in the API; a check keeps them str."""
    if value not in allowed:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=option)
    return value


@app.command()
def run(
    recipe: Path = typer.Argument(
        ...,
        help="Recipe YAML, e.g. pipelines/quickstart.yaml, or a shipped recipe's name: "
        "quickstart, bench, train",
    ),
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
    max_renders: int | None = typer.Option(None, "--max-renders", min=0, help=BUDGET_HELP),
    max_gpu_hours: float | None = typer.Option(None, "--max-gpu-hours", min=0, help=BUDGET_HELP),
    max_usd: float | None = typer.Option(None, "--max-usd", min=0, help=BUDGET_HELP),
    max_api_calls: int | None = typer.Option(None, "--max-api-calls", min=0, help=BUDGET_HELP),
) -> None:
    """Run a recipe end to end and print a summary; rerun the same command to resume.

    Blocks a previous run committed are kept; the rest are finished. A directory holding
    another recipe's output is refused. When the next block would pass a budget cap the
    run stops after the last committed block and exits with status 4.
    """
    from datapipe.runner.budget import BUDGET_STOPPED, BudgetExhaustedError, with_caps

    seen: dict[str, int] = {}
    try:
        loaded = with_caps(
            load_recipe(recipe),
            max_renders=max_renders,
            max_gpu_hours=max_gpu_hours,
            max_usd=max_usd,
            max_api_calls=max_api_calls,
        )
        preflight(loaded)  # a run that cannot start leaves no --out behind, not even a log
        check_out_dir(out)
        with ExitStack() as scope:
            scope.enter_context(run_log(out, console))
            if use_ray or address:
                scope.enter_context(ray_output_to(out))
            bar = scope.enter_context(
                Progress(
                    TextColumn("[bold]groups"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"),
                    TimeRemainingColumn(),
                    console=console,
                    disable=quiet or not console.is_terminal,
                )
            )
            task = bar.add_task("run", total=None, status="starting")
            began = time.perf_counter()

            def report(summary: RunSummary, total: int) -> None:
                seen.update(blocks=summary.blocks, groups=summary.groups, total=total)
                elapsed = time.perf_counter() - began
                rate = summary.renders / max(1e-9, elapsed)
                kept = summary.kept / summary.renders if summary.renders else 0.0
                status = (
                    f"{rate:.1f} renders/s  kept {kept:.0%}  pairs {sum(summary.pairs.values())}"
                )
                bar.update(task, completed=summary.groups, total=total, status=status)
                if not console.is_terminal and not quiet:
                    left = eta(summary, total, elapsed)
                    console.print(
                        f"groups {summary.groups}/{total}  {status}  {left}", highlight=False
                    )

            if use_ray or address:
                from datapipe.runner.ray_runner import run_ray

                summary = run_ray(loaded, out, limit=limit, address=address, progress=report)
            else:
                summary = run_local(loaded, out, limit=limit, progress=report)
    except BudgetExhaustedError as stop:
        assert stop.summary is not None
        print_summary(stop.summary, out, loaded)
        Console().print(f"[yellow]{escape(str(stop))}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(code=BUDGET_STOPPED) from None
    except DatapipeError as error:
        fail(error)
        return
    except KeyboardInterrupt:
        console.print(interrupted_message(out, seen), highlight=False, soft_wrap=True)
        raise typer.Exit(code=INTERRUPTED) from None
    print_summary(summary, out, loaded)


def print_summary(summary: RunSummary, out: Path, loaded: LoadedRecipe) -> None:
    output = Console()
    for table in summary.tables():
        output.print(table)
    output.print(coverage_table(out, loaded))
    report_coverage_floor(out, output)
    output.print(
        f"wrote {out} in {summary.wall_seconds:.0f} s (recipe hash {loaded.recipe_hash[:12]})"
    )
    report_unfilled(out, output)


def coverage_table(out: Path, loaded: LoadedRecipe) -> Table:
    """Did every entity and style appear? The full counts are in run.json's `coverage`."""
    from datapipe.coverage import coverage
    from datapipe.plan import recipe_entities

    found = coverage(out)
    library = loaded.library
    offered = {
        "entity_id": set(recipe_entities(loaded)),
        "style_id": {s.id for s in library.styles},
        "layout_id": {layout.id for layout in library.layouts},
    }
    table = Table(title="coverage (run.json: coverage)")
    for column in ("", "in library", "rendered", "kept", "with samples", "fewest samples"):
        table.add_column(column, justify="left" if column in ("", "fewest samples") else "right")
    for dimension, ids in offered.items():
        rows = found.counts.get(dimension, {})
        fewest = ", ".join(f"{k} {v['samples']}" for k, v in found.least(dimension, 3))
        table.add_row(
            dimension.removesuffix("_id"),
            str(len(ids)),
            str(len(rows)),
            str(sum(1 for v in rows.values() if v["kept"])),
            str(sum(1 for v in rows.values() if v["samples"])),
            escape(fewest),
        )
    return table


def report_coverage_floor(out: Path, output: Console) -> None:
    """Say when the recipe's coverage floor was missed (the run itself still succeeds)."""
    try:
        floor = OutputLayout(out).read_run().get("coverage_floor")
    except (OSError, ValueError):
        return
    if floor and not floor["met"]:
        output.print(f"[yellow]{escape(floor['message'])}[/]", highlight=False, soft_wrap=True)


def eta(summary: RunSummary, total: int, elapsed: float) -> str:
    """Time left at this run's own pace (blocks finished by an earlier run do not count)."""
    done = summary.groups - summary.groups_skipped
    if done <= 0 or total <= summary.groups:
        return ""
    left = elapsed / done * (total - summary.groups)
    return f"ETA {int(left // 60)}m{int(left % 60):02d}s"


def interrupted_message(out: Path, seen: dict[str, int]) -> str:
    """What Ctrl-C leaves: committed blocks are final, the one in flight is redone."""
    committed = len(list((out / "blocks").glob("block-*.json"))) if out.is_dir() else 0
    where = (
        f"{seen['groups']} of {seen['total']} groups" if seen.get("total") else "no progress yet"
    )
    return (
        f"interrupted: {committed} blocks committed in {out} ({where}); "
        "rerun the same command to resume from the last committed block"
    )


def report_unfilled(out: Path, output: Console) -> None:
    """Say how the train targets went and which bench quotas could not be filled, and why
    (run.json has the details)."""
    try:
        run = OutputLayout(out).read_run()
    except (OSError, ValueError):
        return
    targets = run.get("targets") or {}
    if targets:
        rows = [(t, r) for t, r in targets["tasks"].items() if r["target"]]
        line = ", ".join(f"{t} {r['written']}/{r['target']}" for t, r in rows)
        colour = "green" if targets["complete"] else "yellow"
        rounds = len(targets["rounds"])
        output.print(f"[{colour}]train targets after {rounds} round(s):[/] {escape(line)}")
    bench = run.get("bench") or {}
    for row in bench.get("unfilled", []):
        where = f"{row['task']}/{row['language']}/{row['theme']}"
        output.print(f"[yellow]bench quota {escape(where)} not filled:[/] {escape(row['why'])}")


@app.command()
def verify(out: Path = typer.Argument(..., help="Output directory of a run")) -> None:
    """Check an output: manifests against tars, keys, stats, ledgers, pair invariants.

    Prints a report and exits with status 1 on any fault, 3 when the run is sound but
    unfinished (what it committed is checked; rerun it to finish), 0 when clean.
    """
    from rich.table import Table

    from datapipe.verify import MAX_LISTED, unfinished
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
    progress = unfinished(out)
    if progress is not None:
        output.print(f"[yellow]{escape(str(progress))}[/]", highlight=False, soft_wrap=True)
        raise typer.Exit(code=UNFINISHED)
    output.print("[bold green]clean[/]")


@app.command()
def regen(
    out: Path = typer.Option(..., "--out", "-o", help="Output directory of a finished run"),
    task: str = typer.Option(
        ..., "--task", help=f"Task whose split to rebuild: {', '.join(ALL_TASKS)}"
    ),
    split: str = typer.Option("train", "--split", help="Split to rebuild: train or bench"),
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

    choice(task, ALL_TASKS, "--task")
    choice(split, SPLIT_NAMES, "--split")
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
    manifests: Path | None = typer.Option(
        None,
        "--manifests",
        help="Instead check rendered KubeRay manifests (docker/render-manifests.sh --out DIR) "
        "against the recipe: capacity, keys, weight paths, the LLM service, deadlines",
    ),
) -> None:
    """Check that every stage of a recipe can run here: packages, weights, keys, devices;
    and state what its `execution` section needs of a Ray cluster (GPUs, CPUs per pool,
    which pools are pinned and which sized to the cluster, memory where declared).

    Exits with status 1 when something is missing, naming the fix for each piece.
    """
    from rich.table import Table

    from datapipe.doctor import Doctor
    from datapipe.runner.pools import ClusterNeeds

    try:
        loaded = load_recipe(recipe)
    except DatapipeError as error:
        fail(error)
        return
    if manifests is not None:
        from datapipe.manifests import check_manifests

        try:
            findings = check_manifests(loaded, manifests)
        except DatapipeError as error:
            fail(error)
            return
    else:
        findings = Doctor(loaded, devices=devices).check()
    needs = ClusterNeeds.of(loaded)
    title = f"doctor {recipe}" + (f" --manifests {manifests}" if manifests else "")
    table = Table(title=escape(title))
    for column in ("stage", "check", ""):
        table.add_column(column, overflow="fold")
    for f in findings:
        mark = "[green]ok[/]" if f.ok else "[red]missing[/]"
        table.add_row(escape(f.stage), escape(f.what), mark)
    output = Console()
    output.print(table)
    output.print(needs.table())
    for note in needs.notes():
        output.print(f"  {escape(note)}", highlight=False, soft_wrap=True)
    missing = sum(not f.ok for f in findings)
    for f in (f for f in findings if not f.ok):
        # Details and fixes quote paths and pip extras ('datapipe[api]'): never markup, and
        # printed as wrapped lines, which no terminal width cuts.
        output.print(f"[red]✗[/] {escape(f.stage)} · {escape(f.what)}", highlight=False)
        output.print(f"    {escape(f.detail)}", highlight=False, soft_wrap=True)
        if f.fix:
            output.print(f"    fix: {escape(f.fix)}", highlight=False, soft_wrap=True)
    if missing:
        where = f"on the cluster of {manifests}" if manifests else "here"
        output.print(f"[bold red]{missing} missing: this recipe cannot run {where}[/]")
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
        f"ok: {loaded.path}: {sum(loaded.recipe.groups.model_dump().values())} groups; "
        f"{entities} entities in {len(library.entities_by_theme)} themes, "
        f"{len(library.styles)} styles, {len(library.layouts)} layouts; "
        f"recipe hash {loaded.recipe_hash[:12]}",
        highlight=False,
    )


@app.command()
def plan(
    recipe: Path = typer.Argument(..., help="Recipe YAML"),
    pilot: Path | None = typer.Option(
        None,
        "--pilot",
        help="Output of a finished small run of this recipe (datapipe run RECIPE --limit 30): "
        "measured rates with 95% intervals instead of the recipe's priors",
    ),
    gpus: int = typer.Option(
        1, "--gpus", min=1, help="Devices that render (CPU workers for a CPU renderer)"
    ),
    target_pairs: list[str] = typer.Option(
        [], "--target-pairs", help="TASK=N (repeat or comma-separate): groups to ask for"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON"),
) -> None:
    """Before anything renders: groups, renders, LLM and judge calls, pairs per task and
    split, GPU-hours, USD and wall time, from the recipe's priors or a pilot run."""
    from datapipe.estimate import estimate, groups_for, parse_targets, read_pilot, tables

    try:
        loaded = load_recipe(recipe)
        targets = parse_targets(target_pairs, loaded.recipe)
        measured = read_pilot(loaded, pilot) if pilot is not None else None
        est = estimate(loaded, measured, workers=gpus)
        wanted = groups_for(est, loaded.recipe, targets) if targets else None
    except DatapipeError as error:
        fail(error)
        return
    if as_json:
        data = est.to_dict()
        if wanted is not None:
            data["targets"] = {"pairs": targets, "groups": wanted.groups, "safe": wanted.safe}
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    output = Console()
    for table in tables(est, wanted, targets):
        output.print(table)


@app.command("recipe-keys")
def recipe_keys(
    markdown: bool = typer.Option(False, "--markdown", help="A Markdown table instead"),
) -> None:
    """Every recipe key: its type, default and meaning, read from the schema itself."""
    from rich.table import Table

    from datapipe.recipe_keys import key_rows
    from datapipe.recipe_keys import markdown as as_markdown

    if markdown:
        typer.echo(as_markdown(), nl=False)
        return
    table = Table(title="recipe keys", show_lines=False)
    for column in ("key", "type", "default", "meaning"):
        table.add_column(column, overflow="fold")
    for row in key_rows():
        table.add_row(escape(row.path), escape(row.type), escape(row.default), escape(row.meaning))
    Console().print(table)


register(app)

if __name__ == "__main__":
    app()
