"""What every benchmark shares: recipes derived from the quickstart, figures, the CLI.

A benchmark is a module with `run(quick: bool) -> Result` and `main()`; `run.py` calls
each one as its own process (so peak memory and Ray state never leak between them) and
collects the figures. A figure is a ratio or a count with its target, never an absolute
time held against a target: timings vary with the machine, ratios within one run do not.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from datapipe.libraries import LoadedRecipe
    from datapipe.runner.summary import RunSummary

ROOT = Path(__file__).resolve().parents[1]
QWEN_RENDER_SECONDS = 35.0
"""Measured: one 50-step Qwen-Image render at 1328x1328 on an H200 (ENVIRONMENT.md)."""
QWEN_LIGHTNING_SECONDS = 2.9
"""Measured: the same render in 8-step (Lightning) mode."""


@dataclass
class Figure:
    name: str
    value: float | None
    target: str = ""
    """`>= 0.97`, `<= 1.7` ...; empty for figures shown for information."""
    unit: str = ""
    note: str = ""

    @property
    def met(self) -> bool | None:
        if not self.target or self.value is None:
            return None
        op, bound = self.target.split()
        return self.value >= float(bound) if op == ">=" else self.value <= float(bound)


@dataclass
class Result:
    benchmark: str
    compares: str
    figures: list[Figure] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    """Why the benchmark could not run here (e.g. no CUDA device), else None."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for figure, item in zip(self.figures, data["figures"], strict=True):
            item["met"] = figure.met
        return data


def quickstart_data(override: dict[str, Any] | None = None) -> dict[str, Any]:
    """The quickstart recipe with absolute library paths and `override` merged in."""
    data = yaml.safe_load((ROOT / "pipelines" / "quickstart.yaml").read_text(encoding="utf-8"))
    data["libraries"] = {k: str(ROOT / v.removeprefix("../")) for k, v in data["libraries"].items()}
    return merge(data, override or {})


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`base` with `override` merged in, mapping by mapping."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def write_recipe(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def ray_pipeline(
    loaded: LoadedRecipe, out: Path, **init: Any
) -> tuple[dict[str, float], RunSummary]:
    """`run_ray` on `loaded` under a Ray started for it alone, so no earlier run's actors or
    objects share its CPUs; `init` adds the benchmark's own `ray.init` keywords (devices,
    object store). Its rate is taken over the render stage's active span, so Ray's start-up
    does not count. Returns those figures and the run's summary."""
    import ray

    from datapipe.runner.ray_runner import run_ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, **init)
    try:
        began = time.perf_counter()
        summary = run_ray(loaded, out)
        wall = time.perf_counter() - began
    finally:
        ray.shutdown()
    render = summary.stages["render"]
    span = render.span_seconds or wall
    figures = {
        "renders": summary.renders,
        "span_seconds": span,
        "wall_seconds": wall,
        "renders_per_s": summary.renders / span,
        "render_duty": render.seconds / (render.workers * span),
    }
    return figures, summary


def main(
    run: Callable[..., Result], doc: str | None, options: dict[str, dict[str, Any]] | None = None
) -> int:
    """The CLI every benchmark file shares: `[--quick] [--json OUT]` plus its own `options`
    (flag -> argparse keywords), passed to `run` by name; prints the figures."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    for flag, keywords in (options or {}).items():
        parser.add_argument(flag, **keywords)
    args = vars(parser.parse_args())
    out = args.pop("json")
    result = run(**args)
    print_result(result)
    if out:
        out.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    return 0


def print_result(result: Result) -> None:
    if result.skipped:
        print(f"{result.benchmark}: skipped ({result.skipped})", flush=True)
        return
    for f in result.figures:
        value = "-" if f.value is None else f"{f.value:.4g}"
        mark = {True: "met", False: "NOT met", None: ""}[f.met]
        print(
            f"{result.benchmark} {f.name}: {value} {f.unit} {f.target} {mark}".rstrip(),
            file=sys.stdout,
            flush=True,
        )
