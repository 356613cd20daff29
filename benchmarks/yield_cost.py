"""P2, yield, and P7, cost: accepted pairs per render and what one pair costs.

Compares: accepted pairs over renders, per task and overall, on the quickstart (target:
at least 2.5 pairs per render overall), as the pipeline itself reports them in run.json
(`summary.cost`, written by every run); the render seconds per pair it measured on its
own (CPU) renderer; and, projected from that yield, the GPU-seconds per pair if each
render cost the measured 35 s of a 50-step Qwen-Image render on an H200 (2.9 s in
8-step mode). The yield is the renderer's and the filters' alone, so the projection is
the render cost over pairs per render. The cost figure (P7) is that projection priced
at pipelines/train.yaml's `costs` (the quickstart's LLM-free prompts cost no tokens).

    python benchmarks/yield_cost.py [--quick] [--json out.json]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import yaml
from _common import (
    QWEN_LIGHTNING_SECONDS,
    QWEN_RENDER_SECONDS,
    ROOT,
    Figure,
    Result,
    main,
    quickstart_data,
    write_recipe,
)

QUICK_GROUPS = 24


def run(quick: bool) -> Result:
    from datapipe.loading import load_recipe
    from datapipe.runner.local import run_local

    result = Result(
        "P2 yield, P7 cost",
        "accepted pairs over renders on the quickstart (from its run.json), per task and "
        f"overall; GPU-s and USD per pair at a {QWEN_RENDER_SECONDS:g} s render",
    )
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_recipe(write_recipe(Path(tmp) / "quickstart.yaml", quickstart_data()))
        run_local(loaded, Path(tmp) / "out", limit=QUICK_GROUPS if quick else None)
        cost = json.loads((Path(tmp) / "out" / "run.json").read_text())["summary"]["cost"]
    prices = yaml.safe_load((ROOT / "pipelines" / "train.yaml").read_text())["costs"]
    per_render = cost["pairs_per_render"]
    result.figures.append(Figure("pairs per render, all tasks", per_render, ">= 2.5"))
    for task, figures in cost["by_task"].items():
        result.figures.append(
            Figure(
                f"pairs per render, {task}",
                figures["pairs_per_render"],
                note=f"{QWEN_RENDER_SECONDS / figures['pairs_per_render']:.1f} GPU-s per pair "
                "at 35 s a render",
            )
        )
    result.figures += [
        Figure(
            "render CPU-s per pair (procedural renderer, measured)",
            cost["render_seconds_per_pair"],
            unit="s",
        ),
        Figure(
            f"GPU-s per pair at {QWEN_RENDER_SECONDS:g} s a render (50 steps)",
            QWEN_RENDER_SECONDS / per_render,
            unit="s",
        ),
        Figure(
            f"GPU-s per pair at {QWEN_LIGHTNING_SECONDS:g} s a render (8 steps)",
            QWEN_LIGHTNING_SECONDS / per_render,
            unit="s",
        ),
        Figure(
            "USD per pair at train.yaml prices (50 steps)",
            QWEN_RENDER_SECONDS / 3600 * prices["gpu_hour_usd"] / per_render,
            unit="USD",
            note=f"GPU at ${prices['gpu_hour_usd']}/h",
        ),
    ]
    result.raw = {"run_json_cost": cost, "train_prices": prices}
    return result


if __name__ == "__main__":
    sys.exit(main(run, __doc__))
