"""`datapipe report` and `datapipe score`: looking at the data from the command line.

`register(app)` adds both commands to the `datapipe` Typer app (once; a second call
does nothing). Errors datapipe raises on purpose are one red line on stderr and exit
status 2, as in the rest of the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from datapipe.cli_errors import fail
from datapipe.errors import DatapipeError

if TYPE_CHECKING:
    from datapipe.scoring import Scorer, ScoreResult


STATUS_STYLE = {
    "pass": "green",
    "fail": "bold red",
    "n/a": "dim",
    "skipped": "dim",
    "not evaluated": "yellow",
}


def report(
    out: Path = typer.Argument(..., help="Output directory of `datapipe run`"),
    html: Path | None = typer.Option(
        None, "--html", help="Folder to write the report to (default: OUT/report)"
    ),
    per_page: int = typer.Option(48, "--per-page", min=1, help="Samples per page"),
    max_samples: int = typer.Option(
        1000,
        "--max-samples",
        min=0,
        help="Samples shown per split and task (0: all); counts always cover all",
    ),
    rejects_per_reason: int = typer.Option(
        48, "--rejects-per-reason", min=0, help="Rejected renders shown per reason"
    ),
) -> None:
    """Write a static HTML gallery of a run: counts, charts, samples, rejects."""
    from datapipe.report import build_report

    try:
        result = build_report(
            out,
            html,
            per_page=per_page,
            max_samples=max_samples or None,
            rejects_per_reason=rejects_per_reason,
        )
    except DatapipeError as error:
        fail(error)
        return
    Console().print(
        f"wrote {result.index} ({len(result.pages)} pages, {result.samples_shown} samples, "
        f"{result.thumbnails} thumbnails); open it in a browser, no server needed",
        highlight=False,
        soft_wrap=True,
    )


def score(
    image: Path = typer.Argument(..., help="Image file (PNG, JPEG ...)"),
    text: list[str] = typer.Option(
        ..., "--text", help="A line of copy that must be on the image; the first is the title"
    ),
    entity: str | None = typer.Option(None, "--entity", help="The entity the poster shows"),
    language: str | None = typer.Option(
        None, "--language", help="zh or en (default: zh if the text has Chinese characters)"
    ),
    recipe: Path | None = typer.Option(
        None,
        "--recipe",
        help="Recipe whose stages and thresholds apply, a file or a shipped recipe's name "
        "(default: quickstart, shipped with datapipe)",
    ),
    stage: list[str] | None = typer.Option(
        None,
        "--stage",
        help="Run only this annotate stage (repeat for more; the image stage always runs): "
        "the rules on the other stages' scores are listed as not evaluated. E.g. --recipe "
        "train --stage ocr applies the cluster's text rules without its SAM-2 and CLIP weights",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables"),
) -> None:
    """Score one image with the recipe's annotate stages and filter; print every score
    and the verdict with its reasons."""
    try:
        scorer = cached_scorer(recipe, stage or None)
        result = scorer.score(image, list(text), entity=entity, language=language)
    except DatapipeError as error:
        fail(error)
        return
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    print_score(result)


_SCORERS: dict[str, Scorer] = {}


def cached_scorer(recipe: Path | None, stages: list[str] | None = None) -> Scorer:
    """One Scorer per recipe hash and stages in this process, so the models load once when
    the command runs many times in one interpreter (tests, a notebook driving the CLI)."""
    from datapipe.loading import load_recipe
    from datapipe.scoring import Scorer, default_recipe

    path = recipe if recipe is not None else default_recipe()
    if path is None:
        return Scorer()  # raises the error that asks for --recipe
    loaded = load_recipe(path)
    key = loaded.recipe_hash + "".join(f" {s}" for s in sorted(stages or []))
    scorer = _SCORERS.get(key)
    if scorer is None:
        for old in _SCORERS.values():
            old.close()
        _SCORERS.clear()
        scorer = _SCORERS[key] = Scorer(loaded, stages)
    return scorer


def print_score(result: ScoreResult) -> None:
    """Every score with its rules, the OCR lines, and the verdict with its reasons."""
    out = Console()
    spec = result.spec
    out.print(
        f"[bold]{result.image}[/]: {spec['width']}x{spec['height']}, {spec['bytes']} bytes, "
        f"{spec['language']}, subject {'found' if spec['mask'] else 'not found'}; recipe "
        f"{result.recipe} (hash {result.recipe_hash[:12]})",
        highlight=False,
        soft_wrap=True,
    )
    by_score: dict[str, list] = {}
    for rule in result.rules:
        by_score.setdefault(rule.score, []).append(rule)
    table = Table(title="scores")
    for column in ("score", "value", "rule", "status"):
        table.add_column(column, justify="right" if column == "value" else "left")
    names = list(result.scores) + [s for s in by_score if s not in result.scores]
    for name in names:
        value = result.scores.get(name)
        shown = "-" if value is None else f"{value:.4g}"
        if name not in result.scores:
            shown = "not computed"
        rules = by_score.get(name, [])
        if not rules:
            table.add_row(name, shown, "", "")
            continue
        for i, rule in enumerate(rules):
            bounds = []
            if rule.min is not None:
                bounds.append(f">= {rule.min:g}")
            if rule.max is not None:
                bounds.append(f"<= {rule.max:g}")
            style = STATUS_STYLE.get(rule.status, "")
            table.add_row(
                name if i == 0 else "",
                shown if i == 0 else "",
                f"{rule.reason}: {' and '.join(bounds)}",
                f"[{style}]{rule.status}[/]",
            )
    out.print(table)
    ocr_details = result.stages.get("ocr", {})
    lines = ocr_details.get("lines", [])
    if lines:
        ocr = Table(title="copy lines (OCR): every read, and the evidence")
        for column in ("role", "expected", "status", "reads", "evidence"):
            ocr.add_column(column)
        for line in lines:
            reads = (
                "\n".join(
                    f"{r['view']}: {r['text']}"
                    + (f" (glyph {r['min_glyph']:.2f})" if r.get("min_glyph") else "")
                    for r in line.get("reads", [])
                )
                or line["read"]
            )
            status = line.get("status", "ok" if line["found"] else "missing")
            style = "green" if status == "ok" else "red"
            ocr.add_row(
                line["role"], line["expected"], f"[{style}]{status}[/]", reads, line_why(line)
            )
        out.print(ocr)
    for extra in ocr_details.get("unrequested", []):
        words = {True: "words", False: "gibberish", None: "glyphs"}[extra["words"]]
        out.print(
            f"  [red]{extra['kind']} text[/] {extra['text']!r}: {words}, confidence "
            f"{extra['confidence']:.2f}, height {extra['height']:.1%} of the poster",
            highlight=False,
        )
    if result.reasons:
        out.print(f"[bold red]verdict: REJECT[/] ({len(result.reasons)} reasons)", highlight=False)
        for reason in result.reasons:
            out.print(f"  [red]{reason}[/]: {result.details.get(reason, '')}", highlight=False)
    elif result.complete:
        out.print("[bold green]verdict: KEEP[/] (every rule passed)", highlight=False)
    else:
        out.print(
            "[bold yellow]verdict: KEEP on the rules evaluated[/]: "
            f"{len(result.not_evaluated)} rules were not evaluated",
            highlight=False,
        )
    for reason, why in result.not_evaluated.items():
        out.print(f"  [yellow]not evaluated[/] {reason}: {why}", highlight=False, soft_wrap=True)
    for note in result.notes:
        out.print(f"  [dim]note[/] {note}", highlight=False, soft_wrap=True)


def line_why(line: dict[str, Any]) -> str:
    """Why a copy line failed, in words, from the evidence the OCR stage stored."""
    status = line.get("status", "ok" if line["found"] else "missing")
    if status == "missing":
        return f"not found (best read {line['read']!r}, NED {line['ned']:.2f})"
    why = []
    if status == "wrong":
        why.append("the reads agree on other text, or none agrees with the copy")
    elif status == "doubtful":
        why.append("one read agrees with the copy, the others do not")
    if line.get("numbers_read") != line.get("numbers_expected"):
        why.append(
            f"numbers {line.get('numbers_read')} where the copy has {line.get('numbers_expected')}"
        )
    if line.get("glyph_confidence") is not None:
        why.append(f"weakest glyph {line['glyph_confidence']:.2f}")
    for key in ("shape", "shape_latin"):
        shape = line.get(key) or {}
        if shape.get("outlier") is not None:
            why.append(f"glyph {shape['worst']} unlike its character by {shape['outlier']:.2f}")
    latin = line.get("shape_latin") or {}
    if latin.get("height") is not None:
        why.append(f"capitals' heights differ by up to {latin['height']:.0%}")
    if latin.get("width") is not None:
        why.append(f"a glyph's width off its character's by {latin['width']:.2f} (log scale)")
    if latin.get("swap") is not None:
        why.append(f"a digit nearer a letter than its own by {latin['swap']:.2f}")
    if latin.get("repeated") is not None:
        why.append(f"a glyph unlike its twins on the line by {latin['repeated']:.2f}")
    return "; ".join(why)


def register(app: typer.Typer) -> None:
    """Add `report` and `score` to a Typer app; calling it twice adds them once."""
    if any(info.callback in (report, score) for info in app.registered_commands):
        return
    app.command("report")(report)
    app.command("score")(score)
