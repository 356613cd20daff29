"""What was thrown away and why: rejects.parquet with the rejected renders beside it.

Two stages reject: the filter (a render failed a threshold: one row per failed reason)
and the task builders (a kept render could not make a pair: stage "tasks"). The
renders themselves come from the candidate store, so a thumbnail shows exactly what
the filter saw, broken files included (drawn as a placeholder).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from PIL import Image

from datapipe.inspect import html as views
from datapipe.inspect.draw import Cell, decode_image, draw_grid
from datapipe.inspect.output import require_pandas

REJECT_COLUMNS = (
    "candidate_key",
    "group_id",
    "block",
    "stage",
    "task",
    "reason",
    "detail",
    "variant",
    "scores_json",
)
"""The columns of rejects.parquet."""

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from datapipe.inspect.output import Output


def reason_groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(stage, task, reason) groups in a stable order: filter first, then by count, then
    name. A filter row names a task only when a regen's thresholds rejected the render for
    that task alone, so it is its own group, apart from the renders rejected for all."""
    groups: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["stage"], row["task"], row["reason"])
        group = groups.setdefault(
            key,
            {
                "stage": row["stage"],
                "task": row["task"],
                "reason": row["reason"],
                "rows": [],
                "variants": Counter(),
            },
        )
        group["rows"].append(row)
        if row["variant"]:  # task-stage rows have none
            group["variants"][row["variant"]] += 1
    return sorted(
        groups.values(),
        key=lambda g: (g["stage"] != "filter", -len(g["rows"]), g["reason"], g["task"] or ""),
    )


class RejectsView:
    """rejects.parquet: a table, grouped by reason, with thumbnails and histograms."""

    def __init__(self, output: Output) -> None:
        self.output = output

    def __repr__(self) -> str:
        return f"RejectsView({len(self.rows)} rows)"

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.output.reject_rows

    def __len__(self) -> int:
        return len(self.rows)

    def table(self) -> pd.DataFrame:
        """rejects.parquet as it is: one row per (candidate, reason)."""
        return require_pandas().DataFrame(self.rows, columns=list(REJECT_COLUMNS))

    def by_reason(self) -> pd.DataFrame:
        """One row per (stage, reason): rows, distinct candidates, variants, an example."""
        pandas = require_pandas()
        out = []
        for group in reason_groups(self.rows):
            rows = group["rows"]
            out.append(
                {
                    "stage": group["stage"],
                    "task": group["task"],
                    "reason": group["reason"],
                    "rows": len(rows),
                    "candidates": len({r["candidate_key"] for r in rows}),
                    "variants": ", ".join(f"{k}: {v}" for k, v in group["variants"].items()),
                    "example": rows[0]["detail"],
                }
            )
        columns = ["stage", "task", "reason", "rows", "candidates", "variants", "example"]
        return pandas.DataFrame(out, columns=columns)

    @property
    def reasons(self) -> list[str]:
        return [g["reason"] for g in reason_groups(self.rows)]

    def select(self, reason: str | None = None, stage: str | None = None) -> list[dict[str, Any]]:
        rows = self.rows
        if reason is not None:
            if reason not in self.reasons:
                raise KeyError(f"no reject reason {reason!r} (reasons: {', '.join(self.reasons)})")
            rows = [r for r in rows if r["reason"] == reason]
        if stage is not None:
            rows = [r for r in rows if r["stage"] == stage]
        return rows

    def renders(self, keys: list[str]) -> dict[str, Image.Image | None]:
        """The rejected renders from the candidate store (None: the file does not decode)."""
        files = self.output.candidate_files(keys)
        return {k: decode_image(files.get(k, {}).get("png")) for k in keys}

    def cells(self, rows: list[dict[str, Any]], n: int) -> list[Cell]:
        """One cell per candidate (not per reason row), all its reasons in the caption."""
        by_key: dict[str, list[dict[str, Any]]] = {}
        for row in self.rows:
            by_key.setdefault(row["candidate_key"], []).append(row)
        keys = list(dict.fromkeys(r["candidate_key"] for r in rows))[:n]
        renders = self.renders(keys)
        cells = []
        for key in keys:
            mine = by_key[key]
            variant = next((r["variant"] for r in mine if r["variant"]), None)
            header = f"{key}" + (f" · variant {variant}" if variant else "")
            if len(mine) == 1:
                text = f"{mine[0]['reason']}: {mine[0]['detail']}"
            else:
                text = ", ".join(r["reason"] for r in mine)
            cells.append(Cell(target=renders[key], header=header, text=text))
        return cells

    def show(
        self,
        reason: str | None = None,
        n: int = 8,
        columns: int = 4,
        thumb: int = 160,
        stage: str | None = None,
    ) -> Image.Image:
        """A grid of rejected renders (for one reason, or all) with their reasons."""
        return draw_grid(self.cells(self.select(reason, stage), n), columns=columns, thumb=thumb)

    def hist(self, scores: list[str] | None = None, bins: int = 30, columns: int = 3) -> Figure:
        """Each threshold's score over every render: kept, rejected for this rule, rejected
        for other reasons only; the threshold as a vertical line."""
        from datapipe.inspect.charts import default_scores, score_histograms

        frame = self.output.candidates()
        thresholds = self.output.thresholds
        names = scores if scores is not None else default_scores(frame, thresholds)
        per_score = {}
        for name in names:
            reasons = {t.reason for t in thresholds if t.score == name}
            this = frame["reasons"].map(lambda rs, reasons=reasons: bool(reasons & set(rs)))
            per_score[name] = {
                "kept": frame["kept"],
                "rejected for this rule": this,
                "rejected for other reasons": ~frame["kept"] & ~this,
            }
        return score_histograms(
            frame,
            thresholds,
            scores=names,
            per_score_groups=per_score,
            bins=bins,
            columns=columns,
            title=f"{int((~frame['kept']).sum()) if len(frame) else 0} rejected renders",
        )

    def scores(self, key: str) -> dict[str, float | None]:
        """The scores stored with a reject row's candidate."""
        for row in self.rows:
            if row["candidate_key"] == key:
                return json.loads(row["scores_json"] or "{}")
        raise KeyError(key)

    def _repr_html_(self, per_reason: int = 6) -> str:
        sections = []
        for group in reason_groups(self.rows):
            rows = group["rows"]
            cards = []
            keys = list(dict.fromkeys(r["candidate_key"] for r in rows))[:per_reason]
            renders = self.renders(keys)
            for row in rows:
                if row["candidate_key"] not in keys:
                    continue
                keys.remove(row["candidate_key"])
                cards.append(
                    f'<div class="card">{views.img_tag(renders[row["candidate_key"]], 128)}'
                    f'<div class="muted">{views.esc(row["candidate_key"])}</div>'
                    f"<div>{views.esc(row['detail'])}</div></div>"
                )
            variants = ", ".join(f"{k}: {v}" for k, v in group["variants"].items())
            sections.append(
                f"<h4>{views.esc(group['reason'])} <span class='muted'>({views.esc(group['stage'])}"
                f"{': ' + views.esc(group['task']) if group['task'] else ''})</span>: "
                f"{len(rows)}</h4>"
                + (f"<p class='muted'>variants {views.esc(variants)}</p>" if variants else "")
                + f'<div class="cards">{"".join(cards)}</div>'
            )
        return (
            f'{views.STYLE}<div class="dp"><h3>{len(self.rows)} reject rows</h3>'
            f"{''.join(sections)}</div>"
        )
