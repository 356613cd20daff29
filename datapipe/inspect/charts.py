"""Score histograms (matplotlib) with the run's thresholds as vertical lines.

Figures are built with `matplotlib.figure.Figure`, not pyplot: nothing global changes,
no GUI backend is touched, and Jupyter shows the returned figure inline.
Threshold lines carry `gid="threshold:REASON:min|max"`, so code can find them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from datapipe.errors import MissingDependencyError
from datapipe.inspect.rules import Threshold, thresholds_by_score

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

COLORS = {
    "kept": "#4c78a8",
    "rejected": "#e45756",
    "rejected for this rule": "#e45756",
    "rejected for other reasons": "#f2b04a",
    "samples": "#4c78a8",
}
LINE_COLORS = ("#222222", "#7b3294", "#008837", "#c51b7d")


def require_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError:
        raise MissingDependencyError(
            "histograms need matplotlib", fix="pip install 'datapipe[inspect]'"
        ) from None
    return Figure


def default_scores(frame: pd.DataFrame, thresholds: list[Threshold]) -> list[str]:
    """Scores a threshold uses, present in the frame, that take more than one value
    (a score every row shares, such as image.decodes on kept samples, says nothing)."""
    names = list(dict.fromkeys(t.score for t in thresholds))
    present = [n for n in names if n in frame.columns and frame[n].notna().any()]
    varying = [n for n in present if frame[n].dropna().nunique() > 1]
    return varying or present


def score_histograms(
    frame: pd.DataFrame,
    thresholds: list[Threshold],
    scores: list[str] | None = None,
    groups: Mapping[str, Any] | None = None,
    per_score_groups: Mapping[str, Mapping[str, Any]] | None = None,
    bins: int = 30,
    columns: int = 3,
    title: str = "",
) -> Figure:
    """One histogram per score; `groups` (label -> boolean row selector) stack, and
    `per_score_groups` overrides them for single scores. Bounds become dashed lines."""
    figure_class = require_matplotlib()
    names = scores if scores is not None else default_scores(frame, thresholds)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        available = ", ".join(sorted(c for c in frame.columns if "." in c))
        raise KeyError(f"no score {', '.join(missing)} here (scores: {available})")
    bounds = thresholds_by_score(thresholds)
    cols = max(1, min(columns, len(names) or 1))
    rows = max(1, math.ceil(len(names) / cols))
    figure = figure_class(figsize=(4.2 * cols, 2.8 * rows + 0.4), layout="constrained")
    if title:
        figure.suptitle(title)
    if not names:
        ax = figure.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no scores to show", ha="center", va="center")
        ax.set_axis_off()
        return figure
    for i, name in enumerate(names):
        ax = figure.add_subplot(rows, cols, i + 1)
        column = frame[name]
        lines = bounds.get(name, [])
        chosen = (per_score_groups or {}).get(name, groups)
        if chosen is None:
            chosen = {"samples": column.notna()}
        data, labels, colors = [], [], []
        for label, selector in chosen.items():
            values = column[selector].dropna().astype(float).to_numpy()
            data.append(values)
            labels.append(f"{label} ({len(values)})")
            colors.append(COLORS.get(label))
        edges = _edges([v for d in data for v in d], [t.value for t in lines], bins)
        if any(len(d) for d in data):
            ax.hist(data, bins=edges, stacked=True, label=labels, color=colors)
        for j, threshold in enumerate(lines):
            ax.axvline(
                threshold.value,
                color=LINE_COLORS[j % len(LINE_COLORS)],
                linestyle="--",
                linewidth=1.4,
                label=threshold.label,
                gid=f"threshold:{threshold.reason}:{threshold.kind}",
            )
        ax.set_title(name, fontsize=10)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=7, loc="best")
    return figure


def _edges(values: list[float], lines: list[float], bins: int) -> list[float]:
    """Bin edges spanning the values and the threshold lines."""
    points = [*values, *lines]
    if not points:
        return [0.0, 1.0]
    low, high = min(points), max(points)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    span = high - low
    low, high = low - 0.02 * span, high + 0.02 * span
    return [low + (high - low) * k / bins for k in range(bins + 1)]
