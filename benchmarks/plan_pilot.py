"""P8, plan: how well a 30-group pilot predicts the full quickstart's pairs per task.

Compares, per task, the pairs `datapipe plan --pilot` predicts for the full quickstart
from a `--limit 30` pilot with the pairs the full run makes (target: within 15%), and
whether each actual count falls inside the plan's 95% interval, and the part of that
interval that is the unrendered groups' own chance (which no pilot narrows). The full run is the
pilot's output finished by a rerun without --limit (the same files as a fresh full run),
so the pilot's blocks are not rendered twice. Each run is `datapipe run` in its own
process, as a user runs them. `--keep DIR` leaves both outputs in DIR/pilot and DIR/full;
`--reuse DIR` compares them again without rendering (after a change to the estimator).

    python benchmarks/plan_pilot.py [--quick] [--json out.json] [--keep DIR | --reuse DIR]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, Figure, Result, main, quickstart_data, write_recipe

PILOT_GROUPS = 30
QUICK_PILOT_GROUPS = 10
QUICK_GROUPS = {"single": 12, "rescale": 8, "style": 5, "layout": 5}


def datapipe_run(recipe: Path, out: Path, limit: int | None) -> None:
    """`datapipe run` in its own process, as a user runs a pilot and then the full job."""
    command = [sys.executable, "-m", "datapipe.cli", "run", str(recipe), "--out", str(out), "-q"]
    limited = command + (["--limit", str(limit)] if limit else [])
    subprocess.run(limited, check=True, stdout=subprocess.DEVNULL)


def run(quick: bool, keep: Path | None = None, reuse: Path | None = None) -> Result:
    from datapipe.estimate import estimate, read_pilot
    from datapipe.loading import load_recipe

    pilot_groups = QUICK_PILOT_GROUPS if quick else PILOT_GROUPS
    result = Result(
        "P8 plan",
        f"pairs per task predicted from a {pilot_groups}-group pilot over the full run's",
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = reuse or keep or Path(tmp)
        recipe = ROOT / "pipelines" / "quickstart.yaml"
        if quick:
            data = quickstart_data({"groups": QUICK_GROUPS})
            recipe = write_recipe(folder / "quickstart.yaml", data)
        loaded = load_recipe(recipe)
        pilot, full = folder / "pilot", folder / "full"
        if reuse is None:
            datapipe_run(recipe, pilot, pilot_groups)
            shutil.copytree(pilot, full)
            datapipe_run(recipe, full, None)
        plan = estimate(loaded, read_pilot(loaded, pilot))
        actual = json.loads((full / "run.json").read_text())["summary"]["pairs_by_task"]
    raw = {}
    for task, figure in plan.pairs["train"].items():
        made = actual.get(task, 0)
        off = abs(figure.value - made) / made if made else None
        inside = figure.low is not None and figure.low <= made <= (figure.high or 0)
        chance = plan.chance[task]
        raw[task] = {
            "predicted": figure.to_dict(1),
            "actual": made,
            "inside": inside,
            "own_chance": round(chance, 2),
            "pilot_for_15pct": plan.pilot_for(task),
        }
        result.figures.append(
            Figure(
                f"|predicted - actual| / actual, {task}",
                off,
                "<= 0.15",
                note=f"{figure.text()} predicted, {made} made"
                + ("" if inside else ", outside the 95% interval")
                + f"; the groups' own chance +-{chance / figure.value:.0%}",
            )
        )
    result.raw = {"pilot_groups": pilot_groups, "tasks": raw}
    return result


if __name__ == "__main__":
    folders = {"type": Path, "default": None}
    options = {
        "--keep": {**folders, "help": "leave the pilot and full outputs in this folder"},
        "--reuse": {**folders, "help": "compare the outputs a --keep run left here again"},
    }
    sys.exit(main(run, __doc__, options))
