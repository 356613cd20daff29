"""Looking at the data: open a run's output in Python or Jupyter.

    import datapipe.inspect as dpi

    out = dpi.open("out/quickstart")    # Output; dpi.open(path, task="fill") gives a TaskView
    out.counts()                        # samples per split, task and language (DataFrame)
    fill = out.task("fill")             # or out["fill"], out["train", "fill"]
    fill.show(8)                        # PIL grid: source (mask tinted red) -> target + instruction
    fill[0]                             # a Sample: .source .target .mask .instruction .meta .scores
    fill.scores(); fill.hist()          # DataFrame of scores; histograms with thresholds marked
    out.hist()                          # every render, kept vs rejected, thresholds marked
    out.rejects.by_reason(); out.rejects.show(reason="blank"); out.rejects.hist()

Views, samples and tables have a `_repr_html_` with inline thumbnails for Jupyter.
Tables and histograms need the `inspect` extra (pandas, matplotlib).
"""

from __future__ import annotations

from datapipe.inspect.draw import Cell, draw_grid, grid_size, overlay_mask
from datapipe.inspect.html import ScoresTable
from datapipe.inspect.output import Output, Sample, SplitView, TaskView, open_output
from datapipe.inspect.rejects import RejectsView
from datapipe.inspect.rules import Threshold

open = open_output  # `dpi.open(path)`, as one opens any other file

__all__ = [
    "Cell",
    "Output",
    "RejectsView",
    "Sample",
    "ScoresTable",
    "SplitView",
    "TaskView",
    "Threshold",
    "draw_grid",
    "grid_size",
    "open",
    "open_output",
    "overlay_mask",
]
