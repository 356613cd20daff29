"""Small inline SVG charts: no plotting library, no script, no external file."""

from __future__ import annotations

import html
from collections.abc import Sequence

from datapipe.inspect.rules import Threshold

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d")
FONT = 'font-family="system-ui,&quot;datapipe CJK&quot;,sans-serif" font-size="11"'


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.4g}"


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, dict[str, int]]],
    series: Sequence[str],
    colors: dict[str, str] | None = None,
    width: int = 560,
    label_width: int = 170,
    row_height: int = 22,
) -> str:
    """Horizontal bars, one per row, stacked by series, each with its total at the end."""
    colors = colors or {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    top, legend_h = 24, 20
    height = top + legend_h + row_height * max(1, len(rows)) + 8
    plot = width - label_width - 60
    largest = max((sum(v.values()) for _, v in rows), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(title)}" {FONT}>',
        f'<text x="0" y="14" font-size="13" font-weight="600">{_esc(title)}</text>',
    ]
    x = label_width
    for name in series:
        parts.append(
            f'<rect x="{x}" y="{top}" width="10" height="10" fill="{colors[name]}"/>'
            f'<text x="{x + 14}" y="{top + 9}">{_esc(name)}</text>'
        )
        x += 14 + 7 * len(name) + 16
    for i, (label, values) in enumerate(rows):
        y = top + legend_h + i * row_height
        parts.append(
            f'<text x="{label_width - 6}" y="{y + row_height * 0.65:.1f}" '
            f'text-anchor="end">{_esc(label)}</text>'
        )
        x = float(label_width)
        for name in series:
            value = values.get(name, 0)
            if not value:
                continue
            w = plot * value / largest
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_height - 6}" '
                f'fill="{colors[name]}"><title>{_esc(label)} {_esc(name)}: {value}</title></rect>'
            )
            x += w
        total = sum(values.values())
        parts.append(f'<text x="{x + 4:.1f}" y="{y + row_height * 0.65:.1f}">{total}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(
    title: str,
    groups: dict[str, list[float]],
    thresholds: Sequence[Threshold] = (),
    colors: dict[str, str] | None = None,
    bins: int = 24,
    width: int = 320,
    height: int = 170,
) -> str:
    """A stacked histogram of the groups' values with dashed threshold lines."""
    colors = colors or {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
    values = [v for vs in groups.values() for v in vs]
    points = values + [t.value for t in thresholds]
    low, high = (min(points), max(points)) if points else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    pad = 0.03 * (high - low)
    low, high = low - pad, high + pad
    left, right, top, bottom = 34, 8, 46, 22
    plot_w, plot_h = width - left - right, height - top - bottom
    counts = {g: [0] * bins for g in groups}
    for group, vs in groups.items():
        for v in vs:
            k = min(bins - 1, max(0, int((v - low) / (high - low) * bins)))
            counts[group][k] += 1
    tallest = max((sum(counts[g][k] for g in groups) for k in range(bins)), default=0) or 1

    def sx(v: float) -> float:
        return left + (v - low) / (high - low) * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_esc(title)}" {FONT}>',
        f'<text x="0" y="13" font-size="12" font-weight="600">{_esc(title)}</text>',
    ]
    x = 0
    for group in groups:
        n = len(groups[group])
        label = f"{group} ({n})"
        parts.append(
            f'<rect x="{x}" y="19" width="9" height="9" fill="{colors[group]}"/>'
            f'<text x="{x + 12}" y="27" font-size="10">{_esc(label)}</text>'
        )
        x += 12 + 6 * len(label) + 10
    bar_w = plot_w / bins
    for k in range(bins):
        y = top + plot_h
        for group in groups:
            c = counts[group][k]
            if not c:
                continue
            h = plot_h * c / tallest
            y -= h
            parts.append(
                f'<rect x="{left + k * bar_w + 0.5:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}" fill="{colors[group]}"><title>{_esc(group)}: {c}</title></rect>'
            )
    base = top + plot_h
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#999"/>'
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{tallest}</text>'
        f'<text x="{left - 4}" y="{base}" text-anchor="end">0</text>'
        f'<text x="{left}" y="{height - 6}">{_num(low + pad)}</text>'
        f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">{_num(high - pad)}</text>'
    )
    for t in thresholds:
        x_line = sx(t.value)
        parts.append(
            f'<line class="threshold" x1="{x_line:.1f}" y1="{top - 2}" x2="{x_line:.1f}" '
            f'y2="{base}" stroke="#111" stroke-dasharray="4 3" stroke-width="1.3">'
            f"<title>{_esc(t.label)}</title></line>"
            f'<text x="{x_line:.1f}" y="{top - 5}" text-anchor="middle" fill="#111">'
            f"{_num(t.value)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
