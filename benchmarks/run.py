"""Every performance benchmark in one go: a table of ratios against their targets.

    python benchmarks/run.py [--quick] [--json results.json] [--only ray_duty scale ...]

Each benchmark runs as its own process (`python benchmarks/NAME.py --json ...`), so peak
memory, Ray and imports never carry from one to the next. The table shows every figure
with its target and whether it is met; --json gets the raw numbers of all of them.
Timings vary with the machine and its load: the targets are ratios measured within one
run, never absolute times. Long runs belong under `nice`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
BENCHMARKS = (
    "ray_duty",
    "gpu_duty",
    "yield_cost",
    "cpu_cost",
    "shard_write",
    "scale",
    "fidelity",
    "fidelity_fonts",
    "fidelity_pairs",
    "shard_read",
    "plan_pilot",
)
"""P1 (CPU, simulated GPU), P1 (CUDA), P2 and P7, P3, P4, P5, text fidelity (issue 14) on the
renderer's posters and on posters drawn in other fonts, pair
checks and subject-mask IoU against the renderer's truth (issue 15), shard reading (issue 16),
P8 plan from a pilot (issue 18)."""


def run_one(name: str, quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"{name}.json"
        command = [sys.executable, str(HERE / f"{name}.py"), "--json", str(out)]
        command += ["--quick"] if quick else []
        env = {**os.environ, "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
        began = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - began
        if done.returncode or not out.is_file():
            tail = (done.stdout + done.stderr)[-2000:]
            return {"benchmark": name, "figures": [], "skipped": f"failed: {tail}"}
        result = json.loads(out.read_text())
    result["seconds"] = round(seconds, 1)
    return result


def table(results: list[dict[str, Any]]) -> Table:
    out = Table(title="datapipe benchmarks (issue 7)", show_lines=False)
    for column in ("benchmark", "figure", "value", "target", "met", "note"):
        out.add_column(column, justify="right" if column == "value" else "left", overflow="fold")
    for result in results:
        out.add_section()
        out.add_row(f"[bold]{result['benchmark']}[/]", f"[dim]{result.get('compares', '')}[/]")
        if result.get("skipped"):
            out.add_row("", "[yellow]not run[/]", "", "", "", result["skipped"][-300:])
            continue
        for figure in result["figures"]:
            value = figure["value"]
            met = {True: "[green]yes[/]", False: "[red]NO[/]", None: ""}[figure["met"]]
            out.add_row(
                "",
                figure["name"],
                "-" if value is None else f"{value:.4g} {figure['unit']}".strip(),
                figure["target"],
                met,
                figure["note"],
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    parser.add_argument("--json", type=Path, default=None, help="write every raw number here")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 180)  # a log keeps every column
    results = []
    for name in BENCHMARKS:
        if name in args.only:
            console.print(f"running {name} ...", highlight=False)
            results.append(run_one(name, args.quick))
    console.print(table(results))
    figures = [f for r in results for f in r["figures"] if f["met"] is not None]
    met = sum(f["met"] for f in figures)
    console.print(f"{met} of {len(figures)} targets met", highlight=False)
    if args.json:
        record = {
            "quick": args.quick,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "results": results,
        }
        args.json.write_text(json.dumps(record, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
