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

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import ROOT, quickstart_data

pytest.importorskip("diffusers")
pytest.importorskip("open_clip")
pytest.importorskip("sam2")
import torch
from backends.tiny_qwen import save_tiny_qwen_image
from backends.tiny_vision import (
    SAM2_TINY_CONFIG,
    SAM2_TINY_OVERRIDES,
    TINY_CLIP_CONFIG,
    TINY_XLMR_TEXT_CFG,
    build_tiny_multilingual_clip,
    build_tiny_owlv2,
    build_tiny_sam2,
)

from datapipe.io.candidate_store import CandidateStore
from datapipe.io.truth_store import TruthStore
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
    data = quickstart_data()
    data["name"] = "tiny-models"
    data["groups"] = {"single": 2, "rescale": 1, "style": 1, "layout": 1}
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
    data["stages"]["clip"] = {  # multilingual: XLM-R text tower, read from its folder
        "enabled": True,
        "model": f"local-dir:{build_tiny_multilingual_clip(folder / 'clip')}",
        "device": device,
    }
    # Noise from random weights would fail every text rule on every render: keep the render
    # rules noise can pass, so that pairs reach the pair checks. The pair checks are
    # train.yaml's, none eased: noise fails them, and each failure must be recorded.
    data["thresholds"] = {
        "render_failed": {"score": "render.ok", "min": 1},
        "image_unreadable": {"score": "image.decodes", "min": 1},
        "image_wrong_size": {"score": "image.size_match", "min": 1},
        "subject_missing": {"score": "subject.area", "min": 0.0001},
    }
    data["tasks"] = yaml.safe_load((ROOT / "pipelines" / "train.yaml").read_text())["tasks"]
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_tiny_models_through_the_whole_pipeline(recipe, tmp_path):
    loaded = load_recipe(recipe)
    out = tmp_path / "out"
    summary = run_local(loaded, out)
    assert summary.renders == 2 + 2 + 3 + 3
    groups = [g for block in range(summary.blocks) for g in CandidateStore(out).load(block)]
    candidates = [c for g in groups for c in g.candidates]
    for candidate in candidates:
        assert candidate.render["model"].startswith("qwen-image:"), candidate.render
        assert candidate.details["subject"]["source"] == "sam2"
        assert -1 <= candidate.scores["clip.image_prompt"] <= 1
        assert len(candidate.details["clip"]["embedding"]) == TINY_CLIP_CONFIG["embed_dim"]
    masked = [c for c in candidates if c.subject_mask is not None]
    assert masked, "SAM-2 gave no mask for any render"
    assert not TruthStore(out).blocks()  # a diffusion render knows nothing of its own
    assert sum(summary.pairs.values()) > 0
    assert all(not check.faults for check in verify(out))
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["stages"]["clip"]["items"] == 10
    # Every pair of fully kept group members met the pair checks: made, or refused with
    # the reason of the check that failed and the scores it measured.
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    filtered = {r["candidate_key"] for r in rejects if r["stage"] == "filter"}
    made = summary.pairs_by_task()
    checked = 0
    for group in groups:
        if group.kind == "single" or any(c.key in filtered for c in group.candidates):
            continue
        refused = [r for r in rejects if r["group_id"] == group.group_id and r["task"]]
        refused = [r for r in refused if r["task"] == group.kind]
        assert made.get(group.kind, 0) + len(refused) == len(group.candidates), refused
        for row in refused:
            assert row["reason"].startswith(f"{group.kind}_") and row["detail"], row
            assert json.loads(row["scores_json"]), row
        checked += 1
    assert checked, "no pair group had every member kept: no pair check ran"
    # The texts each model read: the English phrase for the detector, the subject and copy
    # (in the poster's language) for CLIP; a CLIP text cut to its context is counted.
    library = loaded.library
    for c in candidates:
        assert c.details["subject"]["prompt"] == library.entity(c.spec.entity_id).detect
        assert c.details["clip"]["prompt_text"].startswith(c.spec.entity_description)
        assert c.spec.copy[0].text in c.details["clip"]["prompt_text"]
        assert c.details["clip"]["unknown_tokens"] == 0
    cut = sum(c.scores["clip.text_truncated"] == 1.0 for c in candidates)
    longest = max(c.details["clip"]["tokens"]["prompt"] for c in candidates)
    assert longest > TINY_XLMR_TEXT_CFG["context_length"] and cut > 0  # a 32-token context
    assert run["summary"]["truncated_inputs"]["clip"] == cut
    clip_model = run["models"]["clip"]
    assert clip_model["sha256"] and clip_model["checkpoint"].endswith("open_clip_pytorch_model.bin")
