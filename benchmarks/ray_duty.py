"""P1, GPU duty of the Ray runner, without a GPU.

Compares: renders/s of the whole Ray pipeline (prompt -> simulated render -> OCR,
quality, subject, phash -> store -> filter -> tasks -> shards) over renders/s of the
same renderer in a bare loop, for 1 and 2 simulated GPUs. The simulated render costs a
fixed 1 s per image, holds one unit of a custom resource `sim_gpu` and no CPU, like a
GPU render whose host thread waits on the device; a real render takes 35 s, so every
per-render overhead weighs 35 times more here than on the cluster.

The pipeline's rate is measured over the render stage's active span (first render
start to last render end), so Ray's start-up is not counted; the ramp until every
worker has work and the last renders' tail are. The bare loop runs the same specs with
one thread per simulated GPU. A ratio of 1.0 means every simulated GPU was busy all the
time.

The render stage hands its pixels on unencoded: PNG encoding runs in the image stage's
CPU workers, not on the (simulated) GPU worker. benchmarks/gpu_duty.py is the same
comparison with a real diffusers pipeline on a CUDA device.

    python benchmarks/ray_duty.py [--quick] [--json out.json]
"""

from __future__ import annotations

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import Figure, Result, main, quickstart_data, ray_pipeline, write_recipe

SECONDS_PER_RENDER = 1.0
LONG_SIDE = 320


def recipe_file(folder: Path, groups: int, seconds: float, gpus: int, long_side: int) -> Path:
    data = quickstart_data()
    data["groups"] = {"single": groups}
    data["image"]["long_side"] = long_side
    data["block_size"] = 4
    data["stages"]["render"].update(backend="simulated", simulated_seconds=seconds)
    data["stages"]["render"]["faults"]["rate"] = 0.0
    data["stages"]["ocr"]["threads"] = 1
    data["execution"] = {
        "stages": {
            "prompt": {"cpus": 0.05},
            # Four renders per call (the stage's default): Ray's ~20 ms per call then weighs
            # on a 1 s render about what it weighs on a 35 s render one at a time.
            "render": {"cpus": 0, "workers": gpus, "resources": {"sim_gpu": 1}},
            "image": {"cpus": 0.05},
            "ocr": {"cpus": 0.3, "workers": 2},
            "quality": {"cpus": 0.05},
            "subject": {"cpus": 0.05},
            "phash": {"cpus": 0.05},
        }
    }
    return write_recipe(folder / f"duty-{gpus}-{groups}.yaml", data)


def bare_loop(recipe_path: Path, gpus: int) -> dict[str, float]:
    """The renderer alone: one thread per simulated GPU over the same specs."""
    from datapipe.backends.simulated import FixedCostRenderer
    from datapipe.loading import load_recipe
    from datapipe.plan import plan_groups
    from datapipe.stages.prompt import PromptStage
    from datapipe.stages.registry import build_stage

    loaded = load_recipe(recipe_path)
    stage = build_stage(PromptStage, loaded)
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
    from datapipe.loading import load_recipe

    figures, summary = ray_pipeline(
        load_recipe(recipe_path),
        out,
        resources={"sim_gpu": gpus},
        object_store_memory=300 * 1024 * 1024,
    )
    figures["pairs"] = sum(summary.pairs.values())
    return figures


def run(quick: bool) -> Result:
    groups = 16 if quick else 72
    result = Result(
        "P1 GPU duty (CPU, simulated)",
        "renders/s of the Ray pipeline over a bare loop of the same fixed-cost renderer",
    )
    with tempfile.TemporaryDirectory() as tmp:
        for gpus in (1, 2):
            path = recipe_file(Path(tmp), groups, SECONDS_PER_RENDER, gpus, LONG_SIDE)
            bare = bare_loop(path, gpus)
            piped = pipeline(path, gpus, Path(tmp) / f"out-{gpus}")
            ratio = piped["renders_per_s"] / bare["renders_per_s"]
            result.raw[f"gpus_{gpus}"] = {"bare": bare, "pipeline": piped, "ratio": ratio}
            result.figures.append(
                Figure(
                    f"pipeline / bare renders/s, {gpus} simulated GPU(s)",
                    ratio,
                    ">= 0.97",
                    note=f"render duty {piped['render_duty']:.3f}, {groups} groups at "
                    f"{SECONDS_PER_RENDER:g} s a render",
                )
            )
    return result


if __name__ == "__main__":
    sys.exit(main(run, __doc__))
