"""GPU duty of the Ray runner, without a GPU.

Compares: renders/s of the whole Ray pipeline (prompt -> simulated render -> OCR,
quality, subject, phash -> store -> filter -> tasks -> shards) over renders/s of the
same renderer in a bare loop, for 1 and 2 simulated GPUs. The simulated render costs a
fixed time per image (default 0.5 s), holds one unit of a custom resource `sim_gpu`
and no CPU, like a GPU render whose host thread waits on the device.

The pipeline's rate is measured over the render stage's active span (first render
start to last render end), so Ray's start-up is not counted; the bare loop runs the
same specs with one thread per simulated GPU. A ratio of 1.0 means the pipeline kept
every simulated GPU busy all the time.

    python benchmarks/ray_duty.py [--groups 48] [--seconds 0.5] [--gpus 1 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def recipe_file(folder: Path, groups: int, seconds: float, gpus: int, long_side: int) -> Path:
    data = yaml.safe_load((ROOT / "pipelines" / "quickstart.yaml").read_text())
    data["libraries"] = {k: str(ROOT / v.removeprefix("../")) for k, v in data["libraries"].items()}
    data["groups"] = {"single": groups}
    data["image"]["long_side"] = long_side
    data["block_size"] = 4
    data["stages"]["render"].update(backend="simulated", simulated_seconds=seconds)
    data["stages"]["render"]["faults"]["rate"] = 0.0
    data["stages"]["ocr"]["threads"] = 1
    data["execution"] = {
        "stages": {
            "prompt": {"cpus": 0.05},
            "render": {"cpus": 0, "workers": gpus, "resources": {"sim_gpu": 1}},
            "image": {"cpus": 0.05},
            "ocr": {"cpus": 0.3, "workers": 2},
            "quality": {"cpus": 0.05},
            "subject": {"cpus": 0.05},
            "phash": {"cpus": 0.05},
        }
    }
    path = folder / f"duty-{gpus}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def bare_loop(recipe_path: Path, gpus: int) -> dict[str, float]:
    """The renderer alone: one thread per simulated GPU over the same specs."""
    from datapipe.backends.simulated import FixedCostRenderer
    from datapipe.plan import plan_groups
    from datapipe.recipe import load_recipe
    from datapipe.stages.prompt import PromptStage

    loaded = load_recipe(recipe_path)
    stage = PromptStage(loaded)
    stage.setup()
    groups = stage.process_batch([slot.to_group() for slot in plan_groups(loaded)])
    specs = [c.spec for g in groups for c in g.candidates]
    render = loaded.recipe.stages.render
    renderers = [FixedCostRenderer(loaded.library, render.simulated_seconds) for _ in range(gpus)]
    shares = [specs[i::gpus] for i in range(gpus)]

    def loop(i: int) -> None:
        for spec in shares[i]:
            renderers[i].render(spec)

    began = time.perf_counter()
    with ThreadPoolExecutor(gpus) as pool:
        list(pool.map(loop, range(gpus)))
    seconds = time.perf_counter() - began
    return {"renders": len(specs), "seconds": seconds, "renders_per_s": len(specs) / seconds}


def pipeline(recipe_path: Path, gpus: int, out: Path) -> dict[str, float]:
    import ray

    from datapipe.recipe import load_recipe
    from datapipe.runner.ray_runner import run_ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        num_cpus=os.cpu_count(),
        resources={"sim_gpu": gpus},
        object_store_memory=300 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        began = time.perf_counter()
        summary = run_ray(load_recipe(recipe_path), out)
        wall = time.perf_counter() - began
    finally:
        ray.shutdown()
    render = summary.stages["render"]
    span = render.span_seconds or wall
    return {
        "renders": summary.renders,
        "span_seconds": span,
        "wall_seconds": wall,
        "renders_per_s": summary.renders / span,
        "render_duty": render.seconds / (render.workers * span),
        "pairs": sum(summary.pairs.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--long-side", type=int, default=320)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for gpus in args.gpus:
            path = recipe_file(Path(tmp), args.groups, args.seconds, gpus, args.long_side)
            bare = bare_loop(path, gpus)
            piped = pipeline(path, gpus, Path(tmp) / f"out-{gpus}")
            ratio = piped["renders_per_s"] / bare["renders_per_s"]
            results.append({"gpus": gpus, "bare": bare, "pipeline": piped, "ratio": ratio})
            print(
                f"{gpus} simulated GPU(s): bare {bare['renders_per_s']:.3f} renders/s, "
                f"pipeline {piped['renders_per_s']:.3f} renders/s, ratio {ratio:.3f} "
                f"(target >= 0.97), render duty {piped['render_duty']:.3f}",
                flush=True,
            )
    if args.json:
        args.json.write_text(
            json.dumps({"seconds_per_render": args.seconds, "runs": results}, indent=2)
        )
    return 0 if all(r["ratio"] >= 0.97 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
