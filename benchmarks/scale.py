"""P5, scale: quickstart-style Ray runs at growing group counts, tiny images.

Compares, at each size against the smallest: seconds per group, of the whole command
and at the margin (the slope between sizes, without the fixed start-up), which should
stay within 10%; the peak private memory of the driver and of each stage's largest
actor (flat: within 10%; their peak RSS, which adds the pages of Ray's shared object
store a process has touched, is shown too); and, at the largest size, the time to rerun
the finished output (a resume with nothing left to do: ledgers and manifests read, no
image touched) against the time of the run itself (under 2%).

Every size runs with `execution.window_groups` at half the smallest size, as a long job
should: Ray Data keeps ~25 KB on the driver for each group a dataset has seen, so one
dataset per phase grows the driver with the run (1.38x at 5k groups, 2.70x at 20k, one
dataset each), while windows hold the driver to one window's worth, whatever the total.
The pools restart between windows, a cost per window, so time stays linear.

Each run is `datapipe run --ray` in its own process (with its own local Ray), so the
driver's peak is its own; the driver and every Ray worker process are sampled twice a
second while the run lasts (see PeakSampler). Images are 64 px on the long side so that
the pipeline's own cost, not OCR, is what grows: at that size the text is unreadable,
so the text thresholds are dropped (every other stage, rule, task and shard runs as in
the quickstart).

    python benchmarks/scale.py [--quick] [--json out.json]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import ROOT, Figure, Result, main, quickstart_data, write_recipe

SIZES = (1000, 5000, 20000)
QUICK_SIZES = (100, 300, 1000)
TEXT_RULES = ("text_missing", "text_mismatch", "text_unexpected")
ACTOR_TITLE = "StageActor"
"""A stage's Ray workers are titled `ray::MapWorker(MapBatches(<Stage>StageActor))`."""


def recipe_for(groups: int, window: int | None) -> dict[str, Any]:
    data = quickstart_data()
    mix = data["groups"]
    total = sum(mix.values())
    counts = {kind: max(1, round(n * groups / total)) for kind, n in mix.items()}
    counts["single"] += groups - sum(counts.values())
    data["groups"] = counts
    data["image"]["long_side"] = 64
    data["stages"]["ocr"].update(threads=1, det_limit_side_len=64)
    data["thresholds"] = {k: v for k, v in data["thresholds"].items() if k not in TEXT_RULES}
    data["execution"] = {
        "stages": {
            "prompt": {"cpus": 0.1},
            "render": {"cpus": 0.2},
            "image": {"cpus": 0.1},
            "ocr": {"cpus": 0.3},
            "quality": {"cpus": 0.1},
            "subject": {"cpus": 0.1},
            "phash": {"cpus": 0.1},
        },
        "window_groups": window,
    }
    return data


def _memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmHWM, RssAnon): the resident high-water mark, and the private resident memory now."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        return int(fields["VmHWM"].split()[0]), int(fields["RssAnon"].split()[0])
    except (OSError, KeyError, ValueError):
        return None


class PeakSampler:
    """Samples the memory of a process and of every descendant until stopped.

    Two peaks per process: the kernel's high-water RSS, which also counts the pages of
    Ray's shared object store a process has touched (they stay mapped), and the largest
    private (anonymous) resident memory seen, which is what the process itself holds.
    """

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.pid = pid
        self.every_s = every_s
        self.peaks: dict[int, tuple[str, int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import psutil

        root = psutil.Process(self.pid)
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                try:
                    title = " ".join(proc.cmdline())[:80]
                except psutil.Error:
                    continue
                memory = _memory_kib(proc.pid)
                if memory is not None:
                    private = max(memory[1], self.peaks.get(proc.pid, ("", 0, 0))[2])
                    self.peaks[proc.pid] = (title, memory[0], private)
            self._stop.wait(self.every_s)

    def driver_mib(self) -> dict[str, float]:
        _, rss, private = self.peaks.get(self.pid, ("", 0, 0))
        return {"rss": rss / 1024, "private": private / 1024}

    def actors_mib(self) -> dict[str, dict[str, float]]:
        """The largest peaks among each stage's actors."""
        out: dict[str, dict[str, float]] = {}
        for pid, (title, rss, private) in self.peaks.items():
            if pid == self.pid or ACTOR_TITLE not in title:
                continue
            name = title.split()[0].rstrip(")").rsplit("(", 1)[-1]
            seen = out.setdefault(name, {"rss": 0.0, "private": 0.0})
            seen["rss"] = max(seen["rss"], rss / 1024)
            seen["private"] = max(seen["private"], private / 1024)
        return dict(sorted(out.items()))


def run_once(recipe: Path, out: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "datapipe.cli", "run", str(recipe), "--out", str(out)]
    command += ["--ray", "--quiet"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(ROOT)}
    began = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with PeakSampler(proc.pid) as sampler:
        output, _ = proc.communicate()
    seconds = time.perf_counter() - began
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{output.decode()[-3000:]}")
    return {
        "seconds": seconds,
        "driver_mib": sampler.driver_mib(),
        "actor_mib": sampler.actors_mib(),
    }


def run(quick: bool) -> Result:
    sizes = QUICK_SIZES if quick else SIZES
    result = Result(
        "P5 scale",
        "seconds per group and peak memory at each size over the smallest; resume of the "
        "finished largest run over the run",
    )
    runs: dict[int, dict[str, Any]] = {}
    window = sizes[0] // 2
    with tempfile.TemporaryDirectory() as tmp:
        for groups in sizes:
            recipe = write_recipe(Path(tmp) / f"scale-{groups}.yaml", recipe_for(groups, window))
            out = Path(tmp) / f"out-{groups}"
            first = run_once(recipe, out)
            first["seconds_per_group"] = first["seconds"] / groups
            if groups == sizes[-1]:
                first["resume"] = run_once(recipe, out)
            runs[groups] = first
            print(f"P5 {groups} groups: {first}", flush=True)
    base = runs[sizes[0]]
    for groups in sizes[1:]:
        r = runs[groups]
        result.figures.append(
            Figure(
                f"s/group {groups} / {sizes[0]}",
                r["seconds_per_group"] / base["seconds_per_group"],
                "<= 1.1",
            )
        )
        for kind, target in (("private", "<= 1.1"), ("rss", "")):
            result.figures.append(
                Figure(
                    f"driver peak {kind} memory {groups} / {sizes[0]}",
                    r["driver_mib"][kind] / base["driver_mib"][kind],
                    target,
                    note=f"{base['driver_mib'][kind]:.0f} -> {r['driver_mib'][kind]:.0f} MiB",
                )
            )
            growth = {
                name: mib[kind] / base["actor_mib"][name][kind]
                for name, mib in r["actor_mib"].items()
                if name in base["actor_mib"]
            }
            worst = max(growth, key=growth.__getitem__)
            result.figures.append(
                Figure(
                    f"stage actor peak {kind} memory {groups} / {sizes[0]}, the most grown",
                    growth[worst],
                    target,
                    note=f"{worst}: {r['actor_mib'][worst][kind]:.0f} MiB",
                )
            )
    (a, ta), (b, tb), (c, tc) = ((n, runs[n]["seconds"]) for n in sizes)
    result.figures.append(
        Figure(
            f"marginal s/group, {b}..{c} over {a}..{b}",
            ((tc - tb) / (c - b)) / ((tb - ta) / (b - a)),
            "<= 1.1",
            note="without the fixed start-up (Ray, actors, models)",
        )
    )
    largest = runs[sizes[-1]]
    result.figures.append(
        Figure(
            f"resume of the finished {sizes[-1]}-group run / the run",
            largest["resume"]["seconds"] / largest["seconds"],
            "<= 0.02",
            note=f"{largest['resume']['seconds']:.1f} s vs {largest['seconds']:.0f} s",
        )
    )
    result.raw = {
        "sizes": list(sizes),
        "window_groups": window,
        "runs": {str(k): v for k, v in runs.items()},
    }
    return result


if __name__ == "__main__":
    sys.exit(main(run, __doc__))
