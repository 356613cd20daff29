"""P1 on a GPU: the Ray pipeline around a real diffusers Qwen-Image pipeline, against a
bare loop of `pipe(...)`.

Compares: renders/s of the whole Ray pipeline (prompt -> qwen_image render on the GPU ->
image, OCR, quality, subject, phash -> store -> filter -> tasks -> shards), measured over
the render stage's active span, over renders/s of `QwenImagePipeline.__call__` in a bare
loop on the same device with the same prompts, seeds, size, steps and CFG. Target: at
least 0.97. The model is the tiny random Qwen-Image pipeline the tests build
(tests/backends/tiny_qwen.py), rendered at Qwen-Image's own size (1328x1328) and step
count (50, true CFG 4), so each render keeps the GPU busy for a measurable time; its
images are noise, which the filters reject: the figure is about keeping the GPU fed, and
encoding, OCR and the rest all run on those noise images at full size.

Without CUDA it reports itself skipped; `--device cpu` runs the same code at a toy size
on the CPU, which checks the script (the figure means nothing there).

    python benchmarks/gpu_duty.py [--quick] [--device cuda|cpu] [--json out.json]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, Figure, Result, main, quickstart_data, write_recipe

SETTINGS = {
    # device: (side, steps, groups, quick groups, dtype)
    "cuda": (1328, 50, 40, 12, "bfloat16"),
    "cpu": (64, 2, 6, 4, "float32"),
}


def recipe_data(model: Path, device: str, quick: bool) -> dict[str, Any]:
    side, steps, groups, quick_groups, dtype = SETTINGS[device]
    cpus = os.cpu_count() or 2
    gpu = device == "cuda"
    data = quickstart_data()
    data["groups"] = {"single": quick_groups if quick else groups}
    data["block_size"] = 4
    data["image"].update(aspect_ratios=["1:1"], sizes={"1:1": [side, side]})
    data["stages"]["render"] = {
        "backend": "qwen_image",
        "qwen_image": {
            "model": str(model),
            "device": device,
            "dtype": dtype,
            "steps": steps,
            "true_cfg_scale": 4.0,
            "batch_size": 1,
        },
    }
    data["stages"]["ocr"].update(threads=1, det_limit_type="max", det_limit_side_len=640)
    # The render worker holds the GPU and one CPU for its host thread; OCR gets what the
    # other stages and Ray Data's own tasks (0.5 CPU) leave.
    share = 1.0 if gpu else 0.1
    stages: dict[str, dict[str, Any]] = {
        "prompt": {"cpus": 0.1},
        # Four renders per call (the stage's default): the tiny model renders in well under
        # a second, where Ray's ~20 ms per call would weigh 35x what it does at 35 s.
        "render": {"cpus": share, "gpus": 1 if gpu else 0},
        "image": {"cpus": share / 2, "workers": 2 if gpu else 1},
        "quality": {"cpus": share / 4},
        "subject": {"cpus": 0.1},
        "phash": {"cpus": share / 4},
    }
    taken = sum(s["cpus"] * s.get("workers", 1) for s in stages.values())
    ocr_cpus = 1.0 if gpu else 0.5
    stages["ocr"] = {"cpus": ocr_cpus, "workers": max(1, int((cpus - 0.5 - taken) / ocr_cpus))}
    data["execution"] = {"stages": stages}
    return data


def specs_of(loaded: Any) -> list[Any]:
    from datapipe.plan import plan_groups
    from datapipe.stages.prompt import PromptStage

    stage = PromptStage(loaded)
    stage.setup()
    groups = stage.process_batch([slot.to_group() for slot in plan_groups(loaded)])
    return [c.spec for g in groups for c in g.candidates]


def bare_loop(loaded: Any) -> dict[str, float]:
    """`pipe(...)` alone, one spec at a time, as the renderer calls it."""
    import torch
    from diffusers import QwenImagePipeline

    config = loaded.recipe.stages.render.qwen_image
    pipe = QwenImagePipeline.from_pretrained(
        config.model, local_files_only=True, dtype=getattr(torch, config.dtype)
    ).to(config.device)
    pipe.set_progress_bar_config(disable=True)
    specs = specs_of(loaded)
    began = time.perf_counter()
    for spec in specs:
        pipe(
            prompt=[spec.prompt],
            negative_prompt=[spec.negative_prompt or " "],
            true_cfg_scale=config.true_cfg_scale,
            num_inference_steps=config.steps,
            width=spec.width,
            height=spec.height,
            generator=[torch.Generator(config.device).manual_seed(spec.seed)],
            output_type="pil",
        )
    seconds = time.perf_counter() - began
    del pipe
    if config.device == "cuda":
        torch.cuda.empty_cache()
    return {"renders": len(specs), "seconds": seconds, "renders_per_s": len(specs) / seconds}


def pipeline(loaded: Any, out: Path, device: str) -> dict[str, float]:
    import ray

    from datapipe.runner.ray_runner import run_ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        num_cpus=os.cpu_count(),
        num_gpus=1 if device == "cuda" else 0,
        object_store_memory=2 * 1024**3,
        include_dashboard=False,
        log_to_driver=False,
    )
    try:
        began = time.perf_counter()
        summary = run_ray(loaded, out)
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
    }


def run(quick: bool, device: str) -> Result:
    result = Result(
        f"P1 GPU duty ({device}, tiny Qwen-Image)",
        "renders/s of the Ray pipeline with the qwen_image renderer over a bare pipe() loop",
    )
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        result.skipped = "no CUDA device: run scripts/gpu-check.sh on a GPU machine"
        return result
    sys.path.insert(0, str(ROOT / "tests" / "backends"))
    from tiny_qwen import save_tiny_qwen_image

    from datapipe.recipe import load_recipe

    with tempfile.TemporaryDirectory() as tmp:
        model = save_tiny_qwen_image(Path(tmp) / "tiny-qwen-image")
        path = write_recipe(Path(tmp) / "gpu-duty.yaml", recipe_data(model, device, quick))
        loaded = load_recipe(path)
        bare = bare_loop(loaded)
        piped = pipeline(loaded, Path(tmp) / "out", device)
    ratio = piped["renders_per_s"] / bare["renders_per_s"]
    side, steps, *_ = SETTINGS[device]
    result.figures.append(
        Figure(
            f"pipeline / bare pipe() renders/s, {side}x{side}, {steps} steps",
            ratio,
            ">= 0.97" if device == "cuda" else "",
            note=f"bare {bare['renders_per_s']:.3f}/s, render duty {piped['render_duty']:.3f}",
        )
    )
    result.raw = {
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "bare": bare,
        "pipeline": piped,
    }
    return result


if __name__ == "__main__":
    device = {"choices": sorted(SETTINGS), "default": "cuda", "help": "cpu: a toy-size check"}
    sys.exit(main(run, __doc__, {"--device": device}))
