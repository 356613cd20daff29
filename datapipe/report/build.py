"""`datapipe report`: a static HTML gallery of a run's output.

    DIR/index.html                    counts per split, task and language; charts
    DIR/{split}/{task}/index.html     samples 1..N: source, mask, target, instruction, scores
    DIR/{split}/{task}/page-2.html    samples N+1..2N, and so on
    DIR/rejects.html                  rejects grouped by reason, the rejected renders shown
    DIR/thumbs/*.jpg|png              thumbnails, named by a hash of the image they show
    DIR/report.json                   what the pages show, and the mark of a generated report

No server and no script: every link is relative, so the folder works opened from the
file system, copied elsewhere or zipped. Every number comes from the stats files,
rejects.parquet and the candidate store; count elements carry data attributes
(`<span class="count" data-split="train" data-task="fill" data-language="all">`) so a
test or a script can read them back.

The report is built in DIR.partial and renamed into place; an existing DIR is replaced
only if it holds a report.json of an earlier report, never otherwise.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datapipe.errors import OutputError
from datapipe.inspect.draw import decode_image, fit, placeholder
from datapipe.inspect.output import Output, Sample, TaskView
from datapipe.inspect.rejects import reason_groups
from datapipe.inspect.rules import KEY_SCORES, Threshold, candidate_thresholds, thresholds_by_score
from datapipe.report import svg
from datapipe.report.fonts import font_face_css, write_fonts

MARKER = "report.json"
THUMB = 192
PER_PAGE = 48
MAX_SAMPLES = 1000
REJECTS_PER_REASON = 48
KEPT_REJECTED = {"kept": "#4c78a8", "rejected": "#e45756"}

CSS = """
:root{--fg:#1d1d1f;--muted:#6e6e73;--line:#d9d9de;--bg:#f5f5f7;--bad:#c62828}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI","datapipe CJK",sans-serif;
color:var(--fg);background:var(--bg)}
header{background:#1d1d1f;padding:8px 16px}
header a{color:#f5f5f7;margin-right:14px;text-decoration:none;font-size:13px}
header a.here{font-weight:700;text-decoration:underline}
main{padding:16px;max-width:1500px;margin:0 auto}
h1{font-size:22px;margin:4px 0 8px}h2{font-size:17px;margin:22px 0 8px}
.muted{color:var(--muted)}
table{border-collapse:collapse;background:#fff;margin:6px 0}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.tiles{display:flex;gap:10px;flex-wrap:wrap}
.tile{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px 14px}
.tile .count{font-size:22px;font-weight:700;display:block}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.chart{background:#fff;border:1px solid var(--line);border-radius:6px;padding:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,600px),1fr));gap:12px}
.card{background:#fff;border:1px solid var(--line);border-radius:6px;padding:8px}
.imgs{display:flex;gap:6px;align-items:center}
figure{margin:0;text-align:center;flex:0 1 auto;min-width:0}
figcaption{font-size:11px;color:var(--muted)}
figure img{display:block;background:#e8e8ed;max-width:100%;height:auto}
.arrow{font-size:22px;color:var(--muted)}
.instruction{margin:6px 0 4px;font-weight:600}
.meta,.scores{font-size:12px;color:var(--muted);margin:2px 0}
.bad{color:var(--bad);font-weight:700}
nav.pages{margin:12px 0}
nav.pages a,nav.pages span{display:inline-block;padding:2px 8px;margin:2px;
border:1px solid var(--line);background:#fff;border-radius:4px;text-decoration:none}
nav.pages span.here{background:#1d1d1f;color:#fff}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass
class Thumb:
    path: str
    """Relative to the report root, with forward slashes."""
    width: int
    height: int


@dataclass
class ThumbWriter:
    """Writes each distinct image once (named by a hash of its bytes)."""

    root: Path
    side: int = THUMB
    written: dict[str, Thumb] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.root / "thumbs").mkdir(parents=True, exist_ok=True)

    def add(self, data: bytes | None, mask: bool = False, label: str = "unreadable image") -> Thumb:
        digest = hashlib.sha1(
            (b"mask:" if mask else b"image:") + (data or b""), usedforsecurity=False
        ).hexdigest()[:24]
        if digest in self.written:
            return self.written[digest]
        image = decode_image(data)
        if image is None:
            thumb, ext = placeholder(self.side, label if data else "no image"), "jpg"
        elif mask:
            thumb, ext = fit(image.convert("L"), self.side), "png"
        else:
            thumb, ext = fit(image.convert("RGB"), self.side), "jpg"
        buffer = io.BytesIO()
        if ext == "jpg":
            thumb.convert("RGB").save(buffer, format="JPEG", quality=85, optimize=True)
        else:
            thumb.save(buffer, format="PNG", optimize=True)
        relative = f"thumbs/{digest}.{ext}"
        (self.root / relative).write_bytes(buffer.getvalue())
        self.written[digest] = Thumb(relative, thumb.width, thumb.height)
        return self.written[digest]


@dataclass
class ReportResult:
    root: Path
    index: Path
    pages: list[Path]
    thumbnails: int
    samples_shown: int


def figure(thumb: Thumb, prefix: str, caption: str) -> str:
    return (
        f'<figure><img src="{prefix}{thumb.path}" width="{thumb.width}" height="{thumb.height}" '
        f'alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'
    )


class ReportBuilder:
    def __init__(
        self,
        output: Output,
        root: Path,
        per_page: int = PER_PAGE,
        max_samples: int | None = MAX_SAMPLES,
        rejects_per_reason: int = REJECTS_PER_REASON,
    ) -> None:
        if per_page < 1:
            raise ValueError(f"per_page must be at least 1, got {per_page}")
        self.output = output
        self.root = root
        self.per_page = per_page
        self.max_samples = max_samples
        self.rejects_per_reason = rejects_per_reason
        self.thumbs = ThumbWriter(root)
        self.pages: list[Path] = []
        self.text: set[str] = set()
        """Every character the pages show: the fonts beside them are cut down to these."""
        self.shown = 0
        self.views: list[TaskView] = [
            output.task(t, s) for s in output.splits for t in output.tasks(s)
        ]
        self.thresholds = candidate_thresholds(output.recipe)

    # -- page frame ---------------------------------------------------------------------
    def nav(self, prefix: str, here: str) -> str:
        links = [("index.html", "overview")]
        links += [(f"{v.split}/{v.task}/index.html", f"{v.split}/{v.task}") for v in self.views]
        links.append(("rejects.html", "rejects"))
        return "".join(
            f'<a href="{prefix}{href}"{" class=here" if href == here else ""}>{esc(label)}</a>'
            for href, label in links
        )

    def write_page(self, relative: str, title: str, body: str) -> Path:
        depth = relative.count("/")
        prefix = "../" * depth
        page = (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{font_face_css(prefix)}{CSS}</style></head><body>"
            f"<header>{self.nav(prefix, relative)}</header><main>{body}</main></body></html>\n"
        )
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
        self.text.update(html.unescape(page))
        self.pages.append(path)
        return path

    # -- task pages ---------------------------------------------------------------------
    def sample_card(self, sample: Sample, prefix: str, bounds: dict[str, list[Threshold]]) -> str:
        figures = []
        names = sample.source_names
        for name in names:
            caption = "source" if len(names) == 1 else name.removesuffix(".png")
            figures.append(figure(self.thumbs.add(sample.files[name]), prefix, caption))
        if "mask.png" in sample.files:
            figures.append(
                figure(self.thumbs.add(sample.files["mask.png"], mask=True), prefix, "mask")
            )
        figures.append('<span class="arrow">&rarr;</span>')
        figures.append(figure(self.thumbs.add(sample.files.get("target.png")), prefix, "target"))
        meta = sample.meta
        scores = sample.scores
        names_shown = [n for n in KEY_SCORES if n in scores]
        names_shown += sorted(n for n in scores if n.startswith("pair."))
        score_text = []
        for name in names_shown:
            value = scores[name]
            bad = any(
                value is not None
                and ((t.kind == "min" and value < t.value) or (t.kind == "max" and value > t.value))
                for t in bounds.get(name, [])
            )
            text = f"{esc(name)}={esc(fmt(value))}"
            score_text.append(f'<span class="bad">{text}</span>' if bad else text)
        params = ", ".join(
            f"{esc(k)}={esc(fmt(v))}"
            for k, v in sample.params.items()
            if not isinstance(v, list | dict)
        )
        lang = "zh-Hans" if sample.language == "zh" else sample.language
        return (
            f'<article class="card sample" id="{esc(sample.key)}" data-key="{esc(sample.key)}" '
            f'data-language="{esc(sample.language)}"><div class="imgs">{"".join(figures)}</div>'
            f'<p class="instruction" lang="{esc(lang)}">{esc(sample.instruction)}</p>'
            f'<p class="meta">{esc(sample.key)} · {esc(sample.language)} · '
            f"{esc(meta.get('entity', {}).get('name', ''))} · "
            f"{esc(meta.get('style', {}).get('name', ''))}"
            f"{' · ' + params if params else ''}</p>"
            f'<p class="scores">{" · ".join(score_text)}</p></article>'
        )

    def count_span(self, value: int, **attrs: str) -> str:
        data = " ".join(f'data-{k.replace("_", "-")}="{esc(v)}"' for k, v in attrs.items())
        return f'<span class="count" {data}>{value}</span>'

    def task_pages(self, view: TaskView) -> None:
        stats = view.stats
        total = int(stats.get("samples", len(view)))
        shown = total if self.max_samples is None else min(total, self.max_samples)
        pages = max(1, -(-shown // self.per_page))
        folder = f"{view.split}/{view.task}"
        bounds = thresholds_by_score(view.thresholds)

        def name(page: int) -> str:
            return "index.html" if page == 1 else f"page-{page}.html"

        def pager(current: int) -> str:
            if pages == 1:
                return ""
            links = []
            if current > 1:
                links.append(f'<a href="{name(current - 1)}" rel="prev">&larr; previous</a>')
            for p in range(1, pages + 1):
                if p == current:
                    links.append(f'<span class="here">{p}</span>')
                else:
                    links.append(f'<a href="{name(p)}">{p}</a>')
            if current < pages:
                links.append(f'<a href="{name(current + 1)}" rel="next">next &rarr;</a>')
            return f'<nav class="pages">{"".join(links)}</nav>'

        attrs = {"split": view.split, "task": view.task}
        counts = [f"{self.count_span(total, **attrs, language='all')} samples"]
        counts += [
            f"{esc(lang)} {self.count_span(n, **attrs, language=lang)}"
            for lang, n in stats.get("by_language", {}).items()
        ]
        extra = []
        for field_name in ("by_theme", "by_mask_kind"):
            values = stats.get(field_name, {})
            if values:
                cells = ", ".join(f"{esc(k)} {v}" for k, v in values.items())
                extra.append(f"<p class='meta'>{field_name.removeprefix('by_')}: {cells}</p>")
        shards = len(stats.get("shards", []))
        note = ""
        if shown < total:
            note = (
                f"<p class='muted'>showing the first {shown} of {total} samples "
                "(<code>datapipe report --max-samples</code> shows more)</p>"
            )
        header = (
            f"<h1>{esc(view.split)} / {esc(view.task)}</h1><p>{' · '.join(counts)} in {shards} "
            f"shards</p>{''.join(extra)}{note}"
        )
        samples = view.samples(limit=shown)
        for page in range(1, pages + 1):
            first = (page - 1) * self.per_page
            cards = []
            for sample in samples:
                cards.append(self.sample_card(sample, "../../", bounds))
                if len(cards) == self.per_page:
                    break
            self.shown += len(cards)
            span = f"samples {first + 1}–{first + len(cards)} of {total}" if cards else "empty"
            body = (
                f"{header}<p class='muted'>page {page} of {pages}: {span}</p>{pager(page)}"
                f'<div class="grid">{"".join(cards)}</div>{pager(page)}'
            )
            self.write_page(f"{folder}/{name(page)}", f"{folder} page {page}", body)

    # -- rejects ------------------------------------------------------------------------
    def rejects_page(self) -> dict[str, int]:
        rows = self.output.reject_rows
        groups = reason_groups(rows)
        by_key: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_key.setdefault(row["candidate_key"], []).append(row)
        wanted: list[str] = []
        for group in groups:
            keys = list(dict.fromkeys(r["candidate_key"] for r in group["rows"]))
            wanted += keys[: self.rejects_per_reason]
        files = self.output.candidate_files(set(wanted))
        index = []
        sections = []
        counts: dict[str, int] = {}
        for group in groups:
            reason, stage = group["reason"], group["stage"]
            regen = stage == "filter" and group["task"] is not None  # for one task only
            scope = f"filter, for {group['task']} only (regen)" if regen else stage
            name = f"{stage}/{group['task']}/{reason}" if regen else f"{stage}/{reason}"
            counts[name] = len(group["rows"])
            attrs = {"stage": stage, "reason": reason} | ({"task": group["task"]} if regen else {})
            anchor = name.replace("/", "-")
            index.append(
                f'<tr><td><a href="#{esc(anchor)}">{esc(reason)}</a></td><td>{esc(scope)}</td>'
                f'<td class="num">{self.count_span(len(group["rows"]), **attrs)}</td></tr>'
            )
            cards = []
            seen: set[str] = set()
            for row in group["rows"]:
                key = row["candidate_key"]
                if key in seen or len(seen) >= self.rejects_per_reason:
                    continue
                seen.add(key)
                found = files.get(key, {})
                image = self.thumbs.add(found.get("png"), label="unreadable render")
                figures = [figure(image, "", "render")]
                if found.get("mask.png") is not None:
                    figures.append(
                        figure(self.thumbs.add(found["mask.png"], mask=True), "", "mask")
                    )
                others = [r["reason"] for r in by_key[key] if r["reason"] != reason]
                variant = f" · variant {esc(row['variant'])}" if row["variant"] else ""
                task = f" · task {esc(row['task'])}" if row["task"] else ""
                cards.append(
                    f'<article class="card reject" data-key="{esc(key)}" data-reason='
                    f'"{esc(reason)}"><div class="imgs">{"".join(figures)}</div>'
                    f'<p class="instruction">{esc(row["detail"])}</p>'
                    f'<p class="meta">{esc(key)}{variant}{task}</p>'
                    + (f'<p class="meta">also: {esc(", ".join(others))}</p>' if others else "")
                    + "</article>"
                )
            distinct = len({r["candidate_key"] for r in group["rows"]})
            more = ""
            if distinct > len(seen):
                more = f"<p class='muted'>showing {len(seen)} of {distinct} candidates</p>"
            variants = ", ".join(f"{esc(k)} {v}" for k, v in group["variants"].items())
            sections.append(
                f'<section id="{esc(anchor)}"><h2>{esc(reason)} '
                f'<span class="muted">({esc(scope)})</span>: '
                f"{self.count_span(len(group['rows']), **attrs)}</h2>"
                + (f"<p class='meta'>variants: {variants}</p>" if variants else "")
                + f"{more}"
                f'<div class="grid">{"".join(cards)}</div></section>'
            )
        filter_keys = {
            r["candidate_key"] for r in rows if r["stage"] == "filter" and r["task"] is None
        }
        body = (
            f"<h1>Rejects</h1><p>{self.count_span(len(rows), total='rows')} rows in "
            "rejects.parquet: one per rejected candidate and reason; "
            f"{self.count_span(len(filter_keys), total='filter-candidates')} renders rejected "
            "by the filter. A task-stage row is a kept render a pair could not be made from; "
            "a filter row for one task is a render a regen's thresholds rejected for that "
            "task only (the other tasks keep it)."
            f"</p><table><tr><th>reason</th><th>stage</th><th>rows</th></tr>{''.join(index)}"
            f"</table>{''.join(sections) or '<p>nothing was rejected</p>'}"
        )
        self.write_page("rejects.html", "rejects", body)
        return counts

    # -- index --------------------------------------------------------------------------
    def index_page(self, reject_counts: dict[str, int]) -> dict[str, Any]:
        output = self.output
        run = output.run
        candidates = output.candidate_rows()
        kept = sum(1 for c in candidates if c["kept"])
        rows = output.reject_rows
        pair_rejects = sum(1 for r in rows if r["stage"] == "tasks")
        samples_total = sum(int(v.stats.get("samples", 0)) for v in self.views)
        tiles = [
            ("renders", len(candidates), "renders in the candidate store"),
            ("kept", kept, "kept by the filter"),
            ("rejected", len(candidates) - kept, "rejected by the filter"),
            ("samples", samples_total, "samples in all splits and tasks"),
            ("pairs-not-made", pair_rejects, "pairs not made (task stage)"),
        ]
        tile_html = "".join(
            f'<div class="tile">{self.count_span(n, total=key)}<span class="muted">'
            f"{esc(label)}</span></div>"
            for key, n, label in tiles
        )
        languages = sorted({lang for v in self.views for lang in v.stats.get("by_language", {})})
        head = "".join(f'<th class="num">{esc(lang)}</th>' for lang in languages)
        table_rows = []
        bars = []
        for v in self.views:
            stats = v.stats
            attrs = {"split": v.split, "task": v.task}
            by_language = stats.get("by_language", {})
            cells = "".join(
                f'<td class="num">{self.count_span(n, **attrs, language=lang)}</td>'
                for lang, n in ((lang, by_language.get(lang, 0)) for lang in languages)
            )
            total = int(stats.get("samples", 0))
            table_rows.append(
                f'<tr><td>{esc(v.split)}</td><td><a href="{esc(v.split)}/{esc(v.task)}/index.html">'
                f"{esc(v.task)}</a></td>{cells}"
                f'<td class="num">{self.count_span(total, **attrs, language="all")}</td>'
                f'<td class="num">{len(stats.get("shards", []))}</td></tr>'
            )
            bars.append(
                (f"{v.split}/{v.task}", {lang: by_language.get(lang, 0) for lang in languages})
            )
        charts = [svg.bar_chart("samples per task and language", bars, languages)]
        reasons = Counter()
        for row in rows:
            reasons[row["reason"]] += 1
        if reasons:
            charts.append(
                svg.bar_chart(
                    "reject rows per reason",
                    [(r, {"rows": n}) for r, n in reasons.most_common()],
                    ["rows"],
                    {"rows": "#e45756"},
                )
            )
        histograms = []
        bounds = thresholds_by_score(self.thresholds)
        for name, lines in bounds.items():
            if not any(c.get(name) is not None for c in candidates):
                continue
            groups = {
                "kept": [c[name] for c in candidates if c["kept"] and c.get(name) is not None],
                "rejected": [
                    c[name] for c in candidates if not c["kept"] and c.get(name) is not None
                ],
            }
            histograms.append(svg.histogram(name, groups, lines, colors=KEPT_REJECTED))
        recipe_hash = str(run.get("recipe_hash", ""))[:12]
        meta = (
            f"recipe <b>{esc(run.get('recipe_name', '?'))}</b> (hash {esc(recipe_hash)}), "
            f"runner {esc(run.get('runner', '?'))}, started {esc(run.get('started', '?'))}, "
            f"finished {esc(run.get('finished') or 'not yet')}"
        )
        body = (
            f"<h1>datapipe report</h1><p class='muted'>{esc(output.path.resolve())}<br>{meta}</p>"
            f'<div class="tiles">{tile_html}</div>'
            f"<h2>Samples</h2><table><tr><th>split</th><th>task</th>{head}"
            f'<th class="num">total</th><th class="num">shards</th></tr>{"".join(table_rows)}'
            f'</table><div class="charts">{"".join(charts)}</div>'
            f"<h2>Scores of every render</h2><p class='muted'>kept and rejected stacked; dashed "
            "lines are the recipe's thresholds</p>"
            f'<div class="charts">{"".join(histograms)}</div>'
            f'<p><a href="rejects.html">rejects by reason</a></p>'
        )
        self.write_page("index.html", "datapipe report", body)
        return {
            "renders": len(candidates),
            "kept": kept,
            "rejected": len(candidates) - kept,
            "samples": {f"{v.split}/{v.task}": v.stats.get("samples", 0) for v in self.views},
            "reject_rows": reject_counts,
        }

    def build(self) -> dict[str, Any]:
        for view in self.views:
            self.task_pages(view)
        reject_counts = self.rejects_page()
        shown = self.index_page(reject_counts)
        write_fonts(self.root, "".join(self.text))
        return shown


def build_report(
    out: str | Path,
    dest: str | Path | None = None,
    per_page: int = PER_PAGE,
    max_samples: int | None = MAX_SAMPLES,
    rejects_per_reason: int = REJECTS_PER_REASON,
) -> ReportResult:
    """Write the HTML report of output directory `out` to `dest` (default OUT/report)."""
    output = Output(out)
    root = Path(dest) if dest is not None else output.path / "report"
    foreign = root.exists() and not (root / MARKER).is_file()
    if foreign and (not root.is_dir() or any(root.iterdir())):
        raise OutputError(
            f"{root} exists and is not a datapipe report (no {MARKER})",
            fix="pick another --html folder, or empty it first",
        )
    building = root.with_name(root.name + ".partial")  # not *.tmp: runs clear those
    if building.exists():
        shutil.rmtree(building)
    building.mkdir(parents=True)
    try:
        builder = ReportBuilder(output, building, per_page, max_samples, rejects_per_reason)
        shown = builder.build()
        record = {
            "generated_by": "datapipe report",
            "output": str(output.path.resolve()),
            "recipe_hash": output.run.get("recipe_hash"),
            "per_page": per_page,
            "max_samples": max_samples,
            "pages": len(builder.pages),
            "thumbnails": len(builder.thumbs.written),
            "shown": shown,
        }
        (building / MARKER).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    if root.exists():
        shutil.rmtree(root)
    building.rename(root)
    pages = [root / p.relative_to(building) for p in builder.pages]
    return ReportResult(
        root=root,
        index=root / "index.html",
        pages=pages,
        thumbnails=len(builder.thumbs.written),
        samples_shown=builder.shown,
    )
