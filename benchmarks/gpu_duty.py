"""P1 on a GPU: the Ray pipeline around a real diffusers Qwen-Image pipeline, against a
bare loop of `pipe(...)`.

Compares: renders/s of the whole Ray pipeline (prompt -> qwen_image render on the GPU ->
image, OCR, quality, subject, phash -> store -> filter -> tasks -> shards), measured over
the render stage's active span, over renders/s of `QwenImagePipeline.__call__` in a bare
loop on the same device with the same prompts, seeds, size, steps and CFG. Target: at
least 0.97. Random models built with the real classes, at Qwen-Image's own size
(1328x1328) and step count (50, true CFG 4); their images are noise, which the filters
reject: the figure is about keeping the GPU fed, and encoding, OCR and the rest all run on
those noise images at full size. Two transformers:

- `tiny`, the tests' model (2 layers, head dim 16): a render is a stream of tiny kernels,
  bound by the host thread that launches them, so any CPU the pipeline's other workers
  take from that thread shows up in full. A worst case: the real model does not work so.
- `wide` (24 layers, 8 heads of 128): each kernel is big enough that a render is bound by
  the GPU's arithmetic, as the real model's is (35 s, or 2.9 s in 8-step Lightning mode);
  about 2 s a render on an H100.

Without CUDA it reports itself skipped; `--device cpu` runs the same code at a toy size
on the CPU, which checks the script (the figure means nothing there).

    python benchmarks/gpu_duty.py [--quick] [--device cuda|cpu] [--models tiny wide]
        [--ocr-workers N] [--json out.json]
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import ROOT, Figure, Result, main, quickstart_data, ray_pipeline, write_recipe


@dataclass(frozen=True)
class Setting:
    side: int
    steps: int
    dtype: str
    wide_layers: int
    groups: dict[str, tuple[int, int]]
    """model -> (groups, groups with --quick): one render each."""


SETTINGS = {
    "cuda": Setting(1328, 50, "bfloat16", 24, {"tiny": (40, 12), "wide": (16, 6)}),
    "cpu": Setting(64, 2, "float32", 1, {"tiny": (6, 4), "wide": (3, 2)}),
}


def transformer_size(model: str, setting: Setting) -> dict[str, Any] | None:
    if model == "tiny":
        return None  # tiny_qwen's own
    return {
        "num_layers": setting.wide_layers,
        "attention_head_dim": 128,
        "num_attention_heads": 8,
        "axes_dims_rope": (16, 56, 56),  # the real model's split of a 128-wide head
    }


def recipe_data(
    model: Path, device: str, groups: int, ocr_workers: int | None = None
) -> dict[str, Any]:
    setting = SETTINGS[device]
    side = setting.side
    cpus = os.cpu_count() or 2
    gpu = device == "cuda"
    data = quickstart_data()
    data["groups"] = {"single": groups}
    data["block_size"] = 4
    data["image"].update(aspect_ratios=["1:1"], sizes={"1:1": [side, side]})
    data["stages"]["render"] = {
        "backend": "qwen_image",
        "qwen_image": {
            "model": str(model),
            "device": device,
            "dtype": setting.dtype,
            "steps": setting.steps,
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
    fit = max(1, int((cpus - 0.5 - taken) / ocr_cpus))
    stages["ocr"] = {"cpus": ocr_cpus, "workers": ocr_workers or fit}
    data["execution"] = {"stages": stages}
    return data


def specs_of(loaded: Any) -> list[Any]:
    from datapipe.plan import plan_groups
    from datapipe.stages.prompt import PromptStage
    from datapipe.stages.registry import build_stage

    stage = build_stage(PromptStage, loaded)
    stage.setup()
    groups = stage.process_batch([slot.to_group() for slot in plan_groups(loaded)])
    return [c.spec for g in groups for c in g.candidates]


def bare_loop(recipe: str) -> dict[str, float]:
    """`pipe(...)` alone, one spec at a time, as the renderer calls it. Run in a fresh
    process, so that it starts as cold as the pipeline's render worker: one-off costs
    (CUDA context, kernel loading, allocator growth) weigh the same on both sides."""
    import torch
    from diffusers import QwenImagePipeline

    from datapipe.loading import load_recipe

    loaded = load_recipe(Path(recipe))
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
    return {"renders": len(specs), "seconds": seconds, "renders_per_s": len(specs) / seconds}


def measure(model: str, device: str, quick: bool, ocr_workers: int | None, tmp: Path) -> dict:
    from tiny_qwen import save_tiny_qwen_image

    from datapipe.loading import load_recipe

    setting = SETTINGS[device]
    folder = save_tiny_qwen_image(
        tmp / f"qwen-{model}", transformer_size=transformer_size(model, setting)
    )
    groups = setting.groups[model][1 if quick else 0]
    data = recipe_data(folder, device, groups, ocr_workers)
    loaded = load_recipe(write_recipe(tmp / f"gpu-duty-{model}.yaml", data))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        bare = pool.apply(bare_loop, (str(loaded.path),))
    piped, _ = ray_pipeline(
        loaded,
        tmp / f"out-{model}",
        num_gpus=1 if device == "cuda" else 0,
        object_store_memory=2 * 1024**3,
    )
    # Seconds a render took inside the pipeline's worker over the bare loop's: the host
    # time the rest of the pipeline costs each render.
    inside = piped["render_duty"] * piped["span_seconds"] / piped["renders"]
    piped["extra_s_per_render"] = inside - bare["seconds"] / bare["renders"]
    piped["ocr_workers"] = data["execution"]["stages"]["ocr"]["workers"]
    return {
        "bare": bare,
        "pipeline": piped,
        "ratio": piped["renders_per_s"] / bare["renders_per_s"],
    }


def run(quick: bool, device: str, models: list[str], ocr_workers: int | None) -> Result:
    result = Result(
        f"P1 GPU duty ({device}, random Qwen-Image)",
        "renders/s of the Ray pipeline with the qwen_image renderer over a bare pipe() loop",
    )
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        result.skipped = "no CUDA device: run scripts/gpu-check.sh on a GPU machine"
        return result
    sys.path.insert(0, str(ROOT / "tests" / "backends"))
    setting = SETTINGS[device]
    result.raw = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu"}
    for model in models:
        with tempfile.TemporaryDirectory() as tmp:
            raw = measure(model, device, quick, ocr_workers, Path(tmp))
        result.raw[model] = raw
        bare, piped = raw["bare"], raw["pipeline"]
        result.figures.append(
            Figure(
                f"{model}: pipeline / bare pipe() renders/s, {setting.side}px, "
                f"{setting.steps} steps",
                raw["ratio"],
                ">= 0.97" if device == "cuda" else "",
                note=(
                    f"bare {bare['seconds'] / bare['renders']:.3f} s a render, "
                    f"+{piped['extra_s_per_render']:.3f} s in the pipeline, "
                    f"render duty {piped['render_duty']:.3f}, "
                    f"{piped['ocr_workers']} OCR workers"
                ),
            )
        )
    return result


if __name__ == "__main__":
    options = {
        "--device": {
            "choices": sorted(SETTINGS),
            "default": "cuda",
            "help": "cpu: a toy-size check",
        },
        "--models": {"nargs": "+", "choices": ["tiny", "wide"], "default": ["tiny", "wide"]},
        "--ocr-workers": {"type": int, "default": None, "help": "instead of what the CPUs fit"},
    }
    sys.exit(main(run, __doc__, options))
