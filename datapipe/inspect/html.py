"""HTML for Jupyter: samples, task and split views, score tables, with inline PNG thumbnails."""

from __future__ import annotations

import html
from collections import Counter
from typing import TYPE_CHECKING, Any

from PIL import Image

from datapipe.inspect.draw import data_uri, overlay_mask, thumbnail
from datapipe.inspect.rules import KEY_SCORES, outside, thresholds_by_score

if TYPE_CHECKING:
    from datapipe.inspect.output import Output, Sample, SplitView, TaskView

STYLE = """<style>
.dp{font-family:system-ui,sans-serif;font-size:13px;color:#222}
.dp table{border-collapse:collapse;margin:4px 0}
.dp th,.dp td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
.dp td.num,.dp th.num{text-align:right;font-variant-numeric:tabular-nums}
.dp .bad{background:#fde2e2;color:#a00}
.dp .muted{color:#777}
.dp td.key{white-space:nowrap}
.dp .cards{display:flex;flex-wrap:wrap;gap:8px}
.dp .card{border:1px solid #ddd;border-radius:4px;padding:6px;max-width:520px;background:#fff}
.dp .imgs{display:flex;gap:4px;align-items:center}
.dp figure{margin:0;text-align:center}
.dp figcaption{font-size:11px;color:#777}
.dp img{background:#eee;display:block}
</style>"""


CARD_THUMB = 128


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def img_tag(image: Image.Image | None, side: int, label: str = "") -> str:
    thumb = thumbnail(image, side)
    caption = f"<figcaption>{esc(label)}</figcaption>" if label else ""
    return (
        f'<figure><img src="{data_uri(thumb)}" width="{thumb.width}" height="{thumb.height}" '
        f'alt="{esc(label)}">{caption}</figure>'
    )


def sample_images(sample: Sample, side: int) -> str:
    parts = []
    names = sample.source_names
    for name, image in zip(names, sample.sources, strict=True):
        parts.append(img_tag(image, side, name.removesuffix(".png")))
    if sample.mask is not None:
        base = sample.source if sample.source is not None else sample.target
        shown = overlay_mask(base, sample.mask) if base is not None else sample.mask
        parts.append(img_tag(shown, side, "mask"))
    parts.append('<span class="muted">&rarr;</span>')
    parts.append(img_tag(sample.target, side, "target"))
    return f'<div class="imgs">{"".join(parts)}</div>'


def score_cells(sample: Sample) -> str:
    scores = sample.scores
    names = [n for n in KEY_SCORES if n in scores] + sorted(
        n for n in scores if n.startswith("pair.")
    )
    return ", ".join(f"{esc(n)}={esc(fmt(scores[n]))}" for n in names)


def sample_card(sample: Sample, side: int = CARD_THUMB) -> str:
    entity = sample.meta.get("entity", {}).get("name", "")
    style = sample.meta.get("style", {}).get("name", "")
    return (
        f'<div class="card">{sample_images(sample, side)}'
        f"<div><b>{esc(sample.instruction)}</b></div>"
        f'<div class="muted">{esc(sample.key)} · {esc(sample.language)} · {esc(entity)} · '
        f"{esc(style)}</div>"
        f'<div class="muted">{score_cells(sample)}</div></div>'
    )


def sample_html(sample: Sample) -> str:
    meta = sample.meta
    rows = [
        ("key", sample.key),
        ("task", sample.task),
        ("split", sample.split),
        ("language", sample.language),
        ("theme", sample.theme),
        ("entity", meta.get("entity", {}).get("name")),
        ("style", meta.get("style", {}).get("name")),
        ("instruction", sample.instruction),
        ("params", ", ".join(f"{k}={v}" for k, v in sample.params.items())),
    ]
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(fmt(v))}</td></tr>" for k, v in rows)
    scores = "".join(
        f'<tr><td>{esc(k)}</td><td class="num">{esc(fmt(v))}</td></tr>'
        for k, v in sorted(sample.scores.items())
    )
    return (
        f'{STYLE}<div class="dp">{sample_images(sample, 256)}<table>{table}</table>'
        f"<details><summary>{len(sample.scores)} scores</summary><table>{scores}</table>"
        "</details></div>"
    )


def counts_table(stats: dict[str, Any]) -> str:
    parts = []
    for field in ("by_language", "by_theme", "by_mask_kind"):
        values = stats.get(field)
        if values:
            cells = ", ".join(f"{esc(k)}: {v}" for k, v in values.items())
            parts.append(f"<tr><th>{esc(field.removeprefix('by_'))}</th><td>{cells}</td></tr>")
    return f"<table>{''.join(parts)}</table>"


def task_html(view: TaskView, n: int = 6) -> str:
    stats = view.stats
    cards = "".join(sample_card(s) for s in view.samples(limit=n))
    shards = len(stats.get("shards", [])) or len(view.manifests)
    return (
        f'{STYLE}<div class="dp"><h3>{esc(view.split)}/{esc(view.task)}: {len(view)} samples '
        f"in {shards} shards</h3>{counts_table(stats)}"
        f'<p class="muted">first {min(n, len(view))} samples</p><div class="cards">{cards}</div>'
        "</div>"
    )


def split_html(split: SplitView, n: int = 3) -> str:
    sections = []
    for view in split:
        cards = "".join(sample_card(s, 96) for s in view.samples(limit=n))
        sections.append(
            f"<h4>{esc(view.task)}: {len(view)} samples</h4>{counts_table(view.stats)}"
            f'<div class="cards">{cards}</div>'
        )
    return f'{STYLE}<div class="dp"><h3>split {esc(split.split)}</h3>{"".join(sections)}</div>'


def output_html(output: Output) -> str:
    run = output.run
    summary = run.get("summary") or {}
    head = (
        f"<h3>{esc(output.path)}</h3><p>recipe <b>{esc(run.get('recipe_name', '?'))}</b> "
        f"(hash {esc(str(run.get('recipe_hash', '?'))[:12])}): {summary.get('renders', '?')} "
        f"renders, {summary.get('kept', '?')} kept, {summary.get('rejected', '?')} rejected</p>"
    )
    rows = output.count_rows()
    languages = sorted({r["language"] for r in rows if r["language"] != "all"})
    header = "".join(f'<th class="num">{esc(lang)}</th>' for lang in [*languages, "total"])
    by_task: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        by_task.setdefault((r["split"], r["task"]), {})[r["language"]] = r["samples"]
    body = "".join(
        f"<tr><td>{esc(s)}</td><td>{esc(t)}</td>"
        + "".join(f'<td class="num">{counts.get(lang, 0)}</td>' for lang in [*languages, "all"])
        + "</tr>"
        for (s, t), counts in sorted(by_task.items())
    )
    reasons = Counter(r["reason"] for r in output.reject_rows)
    reason_rows = "".join(
        f'<tr><td>{esc(k)}</td><td class="num">{v}</td></tr>' for k, v in reasons.items()
    )
    return (
        f'{STYLE}<div class="dp">{head}<table><tr><th>split</th><th>task</th>{header}</tr>'
        f"{body}</table><table><tr><th>reject reason</th><th>count</th></tr>{reason_rows}"
        "</table></div>"
    )


class ScoresTable:
    """A task's scores with a thumbnail per row; values outside a threshold are red."""

    def __init__(self, view: TaskView, limit: int = 20) -> None:
        self.view = view
        self.limit = limit

    def __repr__(self) -> str:
        return f"ScoresTable({self.view.split}/{self.view.task}, first {self.limit})"

    def _repr_html_(self) -> str:
        view = self.view
        samples = list(view.samples(limit=self.limit))
        bounds = thresholds_by_score(view.thresholds)
        names: list[str] = []
        for sample in samples:
            for name in sample.scores:
                if name not in names and (name in bounds or name in KEY_SCORES):
                    names.append(name)
        names.sort(key=lambda n: (n.startswith("pair."), n))
        header = "".join(f'<th class="num">{esc(n)}</th>' for n in names)
        rows = []
        for sample in samples:
            scores = sample.scores
            cells = []
            for name in names:
                value = scores.get(name)
                bad = " bad" if outside(value, bounds.get(name, [])) else ""
                cells.append(f'<td class="num{bad}">{esc(fmt(value))}</td>')
            rows.append(
                f'<tr><td>{img_tag(sample.target, 64)}</td><td class="key">{esc(sample.key)}<br>'
                f'<span class="muted">{esc(sample.language)}</span></td>{"".join(cells)}</tr>'
            )
        return (
            f'{STYLE}<div class="dp"><p>{esc(view.split)}/{esc(view.task)}: first '
            f"{len(samples)} of {len(view)} samples</p><table><tr><th>target</th><th>key</th>"
            f"{header}</tr>{''.join(rows)}</table></div>"
        )
