"""The cluster path end to end: Qwen-Image renders, SAM-2 masks, CLIP scores, on the CPU
and (marked `gpu`, run by scripts/gpu-check.sh) with every model on CUDA.

Tiny random models built with the real classes go through the real loading paths
(local directories and checkpoints named in the recipe), the whole pipeline runs, and
the output is checked like any other: verify clean, masks from SAM-2, scores stored.
Random weights draw noise, so this checks plumbing, not quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import quickstart_data

pytest.importorskip("diffusers")
pytest.importorskip("open_clip")
pytest.importorskip("sam2")
import torch
from backends.tiny_qwen import save_tiny_qwen_image
from backends.tiny_vision import (
    SAM2_TINY_CONFIG,
    SAM2_TINY_OVERRIDES,
    TINY_CLIP_CONFIG,
    TINY_CLIP_NAME,
    build_tiny_clip,
    build_tiny_owlv2,
    build_tiny_sam2,
)

from datapipe.io.candidate_store import CandidateStore
from datapipe.loading import load_recipe
from datapipe.runner.local import run_local
from datapipe.verify import verify

pytestmark = pytest.mark.timeout(600)


CUDA = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    ],
)


@pytest.fixture(scope="module", params=["cpu", CUDA])
def recipe(request, tmp_path_factory) -> Path:
    device = request.param
    folder = tmp_path_factory.mktemp(f"models-{device}")
    clip_config = folder / "tiny_clip.json"
    clip_config.write_text(json.dumps(TINY_CLIP_CONFIG))
    data = quickstart_data()
    data["name"] = "tiny-models"
    data["groups"] = {"single": 2, "rescale": 1, "style": 1}
    data["image"] = {"long_side": 96, "multiple_of": 16, "aspect_ratios": ["1:1", "4:3"]}
    data["stages"]["render"] = {
        "backend": "qwen_image",
        "qwen_image": {
            "model": str(save_tiny_qwen_image(folder / "qwen")),
            "dtype": "float32" if device == "cpu" else "bfloat16",
            "device": device,
            "steps": 2,
            "true_cfg_scale": 2.0,
            "batch_size": 2,
        },
    }
    data["stages"]["subject"] = {
        "backend": "sam2",
        "sam2": {
            "config": SAM2_TINY_CONFIG,
            "checkpoint": str(build_tiny_sam2(folder)),
            "detector": str(build_tiny_owlv2(folder / "owlv2")),
            "detector_kind": "owlv2",
            "box_threshold": 0.0,
            "device": device,
            "overrides": list(SAM2_TINY_OVERRIDES),
        },
    }
    data["stages"]["clip"] = {
        "enabled": True,
        "model": TINY_CLIP_NAME,
        "weights": str(build_tiny_clip(folder)),
        "model_config_file": str(clip_config),
        "device": device,
    }
    # Noise from random weights would fail every text rule: keep only what noise can pass,
    # so that pairs are built and checked too.
    data["thresholds"] = {
        "render_failed": {"score": "render.ok", "min": 1},
        "image_unreadable": {"score": "image.decodes", "min": 1},
        "image_wrong_size": {"score": "image.size_match", "min": 1},
        "subject_missing": {"score": "subject.area", "min": 0.0001},
    }
    data["tasks"]["rescale"].update(min_text_match=0.0, min_color_similarity=0.0)
    data["tasks"]["style"].update(min_color_similarity=0.0, min_phash_distance=0)
    data["tasks"]["layout"]["min_layout_match"] = 0.0
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_tiny_models_through_the_whole_pipeline(recipe, tmp_path):
    loaded = load_recipe(recipe)
    out = tmp_path / "out"
    summary = run_local(loaded, out)
    assert summary.renders == 2 + 2 + 3
    groups = [g for block in range(summary.blocks) for g in CandidateStore(out).load(block)]
    candidates = [c for g in groups for c in g.candidates]
    for candidate in candidates:
        assert candidate.render["model"].startswith("qwen-image:"), candidate.render
        assert candidate.truth is None  # a diffusion render knows no boxes of its own
        assert candidate.details["subject"]["source"] == "sam2"
        assert -1 <= candidate.scores["clip.image_prompt"] <= 1
        assert len(candidate.details["clip"]["embedding"]) == TINY_CLIP_CONFIG["embed_dim"]
    masked = [c for c in candidates if c.subject_mask is not None]
    assert masked, "SAM-2 gave no mask for any render"
    assert sum(summary.pairs.values()) > 0
    assert all(not check.faults for check in verify(out))
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["stages"]["clip"]["items"] == 7
