"""P3, CPU cost per candidate at Qwen-Image's size, and OCR accuracy at each input scale.

Compares: the CPU time (process time, all threads: core-seconds) that each CPU stage
spends per candidate on posters 1328 px on the long side (procedural renders at the
quickstart's aspect ratios), summed, against one 35-second 50-step Qwen-Image render:
target at most 1.7 core-seconds, 5% of a render on one core per GPU. OCR runs with one
thread and the cluster recipe's settings (pipelines/train.yaml: detector limit and the
scaled copy it reads).

And OCR's accuracy at each input scale, against the renderer's ground truth (the text
it drew, garbled on purpose for a fifth of the posters): for every drawn line the best
normalised edit similarity among the lines read, the share read exactly, and whether
the text rules of the filter (missing, mismatch, unexpected) give the same verdict as
at full size; with the core-seconds of each scale. The chosen scale is the cheapest
one that reads as well as full size.

    python benchmarks/cpu_cost.py [--quick] [--json out.json]
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from _common import (
    QWEN_RENDER_SECONDS,
    ROOT,
    Figure,
    Result,
    main,
    merge,
    quickstart_data,
    write_recipe,
)

LONG_SIDE = 1328
TEXT_RULES = ("text_missing", "text_mismatch", "text_unexpected")
OCR_SCALES: dict[str, tuple[dict[str, Any], int | None]] = {
    "detector min 480 (full size)": ({"det_limit_type": "min", "det_limit_side_len": 480}, None),
    "detector max 960": ({"det_limit_type": "max", "det_limit_side_len": 960}, None),
    "detector max 736": ({"det_limit_type": "max", "det_limit_side_len": 736}, None),
    "detector max 640": ({"det_limit_type": "max", "det_limit_side_len": 640}, None),
    "detector max 480": ({"det_limit_type": "max", "det_limit_side_len": 480}, None),
    "copy at 1024, detector max 736": ({"det_limit_type": "max", "det_limit_side_len": 736}, 1024),
    "copy at 640, detector max 640": ({"det_limit_type": "max", "det_limit_side_len": 640}, 640),
    "copy at 512, detector max 512": ({"det_limit_type": "max", "det_limit_side_len": 512}, 512),
    "copy at 384, detector max 384": ({"det_limit_type": "max", "det_limit_side_len": 384}, 384),
}
"""OCR settings compared, and the long side of a scaled copy read instead of the poster
(None: the poster itself). `det_limit_type: min` only ever scales up, so the first reads
a 1328 px poster at full size: the reference. With `max` the detector sees a scaled copy
and recognition reads its crops from the full-size poster; a copy scales both down."""


def cluster_ocr() -> dict[str, Any]:
    """The train recipe's OCR detector scale: what P3 charges for OCR."""
    ocr = yaml.safe_load((ROOT / "pipelines" / "train.yaml").read_text())["stages"]["ocr"]
    return {k: ocr[k] for k in ("det_limit_side_len", "det_limit_type")}


def load(folder: Path, name: str, override: dict[str, Any]) -> Any:
    from datapipe.loading import load_recipe

    base = {
        "image": {"long_side": LONG_SIDE},
        "stages": {"ocr": {"threads": 1}, "render": {"faults": {"rate": 0.0}}},
    }
    data = quickstart_data(merge(base, override))
    return load_recipe(write_recipe(folder / f"{name}.yaml", data))


def rendered_groups(loaded: Any, count: int) -> list[Any]:
    """The recipe's first `count` groups, composed and rendered (not yet encoded)."""
    from datapipe.plan import plan_groups
    from datapipe.stages.prompt import PromptStage
    from datapipe.stages.registry import build_stage
    from datapipe.stages.render import RenderStage

    groups = [slot.to_group() for slot in plan_groups(loaded)[:count]]
    for cls in (PromptStage, RenderStage):
        stage = build_stage(cls, loaded)
        stage.setup()
        groups = stage.process_batch(groups)
    return groups


def cpu_of(work: Callable[[], Any]) -> tuple[float, Any]:
    began = time.process_time()
    value = work()
    return time.process_time() - began, value


def stage_costs(loaded: Any, groups: list[Any], out: Path) -> dict[str, float]:
    """Core-seconds per candidate of every CPU stage after the render, in pipeline order."""
    from datapipe.io.candidate_store import CandidateStore
    from datapipe.io.shard_sink import ShardSink
    from datapipe.stages.registry import build_annotators, build_dataset_stages

    candidates = sum(len(g.candidates) for g in groups)
    costs: dict[str, float] = {}

    def batches(stage: Any, groups: list[Any]) -> list[Any]:
        done = []
        for start in range(0, len(groups), stage.batch_size):
            done += stage.process_batch(groups[start : start + stage.batch_size])
        return done

    for stage in build_annotators(loaded):
        stage.setup()
        costs[stage.name], groups = cpu_of(lambda s=stage, g=groups: batches(s, g))
    store = CandidateStore(out)
    costs["store"], _ = cpu_of(lambda: store.commit(0, groups))
    for stage in build_dataset_stages(loaded, out).all:
        stage.setup()
        costs[stage.name], groups = cpu_of(lambda s=stage, g=groups: batches(s, g))
    sink = ShardSink(out, "train", loaded.recipe.shards)
    samples = [s for g in groups for s in g.samples]
    costs["shards"], _ = cpu_of(lambda: sink.write_block(0, samples))
    return {name: seconds / candidates for name, seconds in costs.items()}


def truth_accuracy(candidate: Any) -> list[float]:
    """Per line the renderer drew: the best NED among the lines (and joined neighbours)
    OCR read."""
    from datapipe.backends.ocr_rapidocr import OcrLine
    from datapipe.stages.ocr import reading_candidates
    from datapipe.text import ned_similarity

    read = [
        OcrLine(r["text"], r["confidence"], tuple(r["box"]))
        for r in candidate.details["ocr"]["recognized"]
    ]
    options = [text for text, _ in reading_candidates(read)]
    return [
        max((ned_similarity(box.text, text) for text in options), default=0.0)
        for box in candidate.truth.text_boxes
    ]


def text_verdict(loaded: Any, candidate: Any) -> tuple[str, ...]:
    from datapipe.stages.filter import evaluate

    rules = {k: v for k, v in loaded.recipe.thresholds.items() if k in TEXT_RULES}
    return tuple(sorted(evaluate(candidate.scores, rules, image_failed=False).reasons))


def scaled(image: Any, side: int) -> Any:
    from PIL import Image

    scale = side / max(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, Image.Resampling.BILINEAR)


def ocr_scales(folder: Path, count: int) -> dict[str, dict[str, Any]]:
    from datapipe.images import load_rgb
    from datapipe.stages.image_check import ImageStage
    from datapipe.stages.ocr import OcrStage
    from datapipe.stages.registry import build_stage

    faulty = {"faults": {"rate": 0.2, "kinds": ["wrong_text"]}}
    base = load(folder, "accuracy", {"stages": {"render": faulty}})
    groups = build_stage(ImageStage, base).process_batch(rendered_groups(base, count))
    candidates = [c for g in groups for c in g.candidates][:count]
    images = [load_rgb(c.image) for c in candidates]
    results: dict[str, dict[str, Any]] = {}
    reference: list[tuple[str, ...]] = []
    for name, (settings, copy_side) in OCR_SCALES.items():
        loaded = load(folder, "ocr", {"stages": {"ocr": settings, "render": faulty}})
        stage = build_stage(OcrStage, loaded)
        stage.setup()
        fresh = [dataclasses.replace(c, scores={}, details={}) for c in candidates]

        def read_all(
            stage: OcrStage = stage, fresh: list[Any] = fresh, side: int | None = copy_side
        ) -> None:
            for candidate, image in zip(fresh, images, strict=True):
                stage.annotate(candidate, image if side is None else scaled(image, side))

        seconds, _ = cpu_of(read_all)
        neds = [n for c in fresh for n in truth_accuracy(c)]
        verdicts = [text_verdict(loaded, c) for c in fresh]
        reference = reference or verdicts
        results[name] = {
            "settings": settings,
            "copy_side": copy_side,
            "core_seconds_per_image": seconds / len(fresh),
            "images": len(fresh),
            "lines": len(neds),
            "mean_ned": sum(neds) / len(neds),
            "exact_lines": sum(n == 1.0 for n in neds),
            "same_verdict": sum(a == b for a, b in zip(verdicts, reference, strict=True)),
            "rejected": sum(bool(v) for v in verdicts),
        }
        print(f"P3 OCR {name}: {results[name]}", flush=True)
    return results


def run(quick: bool) -> Result:
    result = Result(
        "P3 CPU per candidate",
        f"core-seconds per candidate of each CPU stage at {LONG_SIDE} px, summed, against one "
        f"{QWEN_RENDER_SECONDS:g} s render; OCR accuracy vs the renderer's truth per scale",
    )
    groups_count, ocr_images = (4, 6) if quick else (16, 30)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loaded = load(folder, "cost", {"stages": {"ocr": cluster_ocr()}})
        groups = rendered_groups(loaded, groups_count)
        costs = stage_costs(loaded, groups, folder / "out")
        scales = ocr_scales(folder, ocr_images)
    total = sum(costs.values())
    for name, seconds in costs.items():
        result.figures.append(Figure(f"{name} core-s/candidate", seconds, unit="s"))
    result.figures.append(
        Figure(
            "CPU stages in all, core-s/candidate",
            total,
            "<= 1.7",
            unit="s",
            note=str(cluster_ocr()),
        )
    )
    result.figures.append(Figure("CPU stages / one render", total / QWEN_RENDER_SECONDS, "<= 0.05"))
    full = next(iter(scales.values()))
    for name, s in scales.items():
        result.figures.append(
            Figure(
                f"OCR {name}: core-s/image",
                s["core_seconds_per_image"],
                unit="s",
                note=f"exact {s['exact_lines']}/{s['lines']} lines, NED {s['mean_ned']:.4f}, "
                f"verdict as full size {s['same_verdict']}/{s['images']}",
            )
        )
    chosen = next(
        (s for s in scales.values() if s["copy_side"] is None and s["settings"] == cluster_ocr()),
        None,
    )
    if chosen is not None:
        result.figures.append(
            Figure(
                "OCR at the recipe's scale: lines read exactly / at full size",
                chosen["exact_lines"] / max(1, full["exact_lines"]),
                ">= 0.99",
            )
        )
    result.raw = {
        "long_side": LONG_SIDE,
        "candidates": sum(len(g.candidates) for g in groups),
        "ocr_settings": cluster_ocr(),
        "core_seconds_per_candidate": costs,
        "total": total,
        "ocr_scales": scales,
    }
    return result


if __name__ == "__main__":
    sys.exit(main(run, __doc__))
