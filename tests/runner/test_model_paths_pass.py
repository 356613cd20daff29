"""train.yaml's pair checks pass on images that can pass them, through the cluster path.

The tiny random models cannot pass a content check (test_model_backends.py shows each
check runs and records its reason). Here the model outputs are stand-ins with the real
record shapes, computed from posters that are right: a SAM-2 stand-in returns a mask
found in the image (SubjectResult, as Sam2Subject does), a CLIP stand-in encodes images
as unit vectors that grow apart as their colours do (ClipScorer's contract); RapidOCR
reads for real. Everything after the models is the pipeline's own code, and with
train.yaml's task settings, no check switched off, layout and rescale samples are written.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import ROOT, write_recipe
from PIL import Image

from datapipe.backends import clip_openclip, sam2_subject, subject_pixels
from datapipe.loading import load_recipe
from datapipe.plan import plan_groups
from datapipe.stages.filter import FilterStage
from datapipe.stages.prompt import PromptStage
from datapipe.stages.registry import build_annotators, build_stage
from datapipe.stages.render import RenderStage
from datapipe.stages.tasks import TaskStage
from datapipe.tasks.common import TaskContext


class SubjectStandIn:
    """Sam2Subject's interface: the box a detector would give, refined to a mask."""

    version = "sam2-stand-in"

    def __init__(self, config, overrides) -> None:  # noqa: ARG002  (Sam2Subject's signature)
        self.config = config

    def load(self) -> None:
        """Nothing to load."""

    def segment(self, image: Image.Image, prompt: str) -> sam2_subject.SubjectResult:  # noqa: ARG002
        found = subject_pixels.segment(image, [])
        if not found.mask.any():
            return sam2_subject.SubjectResult(None, None, 0.0, None, sam2_subject.NO_BOX)
        ys, xs = np.nonzero(found.mask)
        box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        return sam2_subject.SubjectResult(found.mask, box, 0.9, 0.95, None, boxes=[box])


class ClipStandIn:
    """ClipScorer's interface: L2-normalised embeddings, (n, dim) float32."""

    version = "clip-stand-in"

    def __init__(self, config, model_config=None) -> None:  # noqa: ARG002  (ClipScorer's)
        self.config = config

    def load(self) -> None:
        """Nothing to load."""

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        rows = []
        for image in images:
            small = np.asarray(image.convert("RGB").resize((32, 32))) // 64
            index = (small[..., 0] * 16 + small[..., 1] * 4 + small[..., 2]).ravel()
            rows.append(np.sqrt(np.bincount(index, minlength=64) / index.size))
        out = np.asarray(rows, dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    context_length = 77

    def count_tokens(self, texts: list[str]) -> list[tuple[int, int]]:
        """(tokens, unknown tokens): one a character, none unknown (a multilingual model's
        tokenizer reads both languages)."""
        return [(len(text), 0) for text in texts]

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        out = np.ones((len(texts), 64), dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    train = yaml.safe_load((ROOT / "pipelines" / "train.yaml").read_text(encoding="utf-8"))
    folder = tmp_path_factory.mktemp("paths")
    override = {
        "groups": {"single": 0, "rescale": 3, "layout": 2, "style": 1},
        "stages": {
            "subject": {
                "backend": "sam2",
                "sam2": {"checkpoint": "stand-in.pt", "detector": "stand-in"},
            },
            "clip": {"enabled": True},
        },
        "tasks": train["tasks"],
    }
    loaded = load_recipe(write_recipe(folder, override))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sam2_subject, "Sam2Subject", SubjectStandIn)
        patch.setattr(clip_openclip, "ClipScorer", ClipStandIn)
        prompt = build_stage(PromptStage, loaded)
        prompt.setup()
        groups = prompt.process_batch([s.to_group() for s in plan_groups(loaded)])
        stages = [
            build_stage(RenderStage, loaded),
            *build_annotators(loaded),
            FilterStage(loaded.recipe.split_thresholds("train")),
            TaskStage(TaskContext.of(loaded)),
        ]
        for stage in stages:
            stage.setup()
            groups = stage.process_batch(groups)
    return loaded, groups


def test_the_cluster_record_shapes_are_what_the_checks_read(built):
    _, groups = built
    candidates = [c for g in groups for c in g.candidates]
    assert all(c.details["subject"]["source"] == "sam2" for c in candidates)
    assert sum("subject_embedding" in c.details.get("clip", {}) for c in candidates) >= 8


def test_train_task_settings_write_layout_and_rescale_samples(built):
    loaded, groups = built
    assert loaded.recipe.tasks.rescale.min_clip_similarity == 0.8  # train.yaml's, not eased
    samples = [s for g in groups for s in g.samples]
    by_task = {task: [s for s in samples if s.task == task] for task in ("rescale", "layout")}
    assert by_task["rescale"] and by_task["layout"], [
        r.reason for g in groups for r in g.pair_rejects
    ]
    for sample in by_task["rescale"]:
        pair = sample.meta["scores"]["pair"]
        # measured on the CLIP crops, so held to the CLIP bound (not the descriptor's)
        assert "pair.subject_similarity" not in pair
        assert (
            pair["pair.subject_clip_similarity"]
            >= loaded.recipe.tasks.rescale.min_subject_clip_similarity
        )
        assert pair["pair.clip_similarity"] >= 0.8
    for sample in by_task["layout"]:
        assert sample.meta["scores"]["pair"]["pair.layout_match"] >= 0.6
