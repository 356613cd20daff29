"""What every task builder shares: context, instructions, metadata, image helpers."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

import datapipe
from datapipe.backends.template_composer import quote_copy
from datapipe.hashing import derive_seed
from datapipe.libraries import InstructionFile, LoadedRecipe
from datapipe.recipe import TasksConfig
from datapipe.records import Candidate, Group, PairReject, Sample

SPLIT_TRAIN = "train"


@dataclass(frozen=True)
class TaskContext:
    """What every builder may know beyond its own task's settings: the split's task
    settings (handed out one task at a time), the hashes samples record, and the
    libraries' wording."""

    tasks: TasksConfig
    """This split's task settings (the bench may set its own)."""
    generation_hash: str
    recipe_hash: str
    instructions: InstructionFile
    drawn_as: dict[str, dict[str, str]]
    """The procedural renderer's icon names, by language and entity shape."""
    split: str = SPLIT_TRAIN

    @classmethod
    def of(cls, loaded: LoadedRecipe, split: str = SPLIT_TRAIN) -> TaskContext:
        return cls(
            tasks=loaded.recipe.split_tasks(split),
            generation_hash=loaded.generation_hash,
            recipe_hash=loaded.recipe_hash,
            instructions=loaded.library.instructions,
            drawn_as=loaded.library.poster.drawn_as,
            split=split,
        )

    def rng(self, task: str, key: str) -> random.Random:
        """One generator per (task, sample): samples never depend on build order."""
        return random.Random(derive_seed(self.generation_hash, task, key))

    def instruction(
        self, template_key: str, language: str, rng: random.Random, **values: Any
    ) -> str:
        templates = self.instructions.templates(template_key, language)
        return rng.choice(templates).format(**values)


DRAWS_ICONS = ("procedural", "simulated")
"""Render backends that draw one icon per entity shape rather than the entity itself."""


def subject_name(ctx: TaskContext, candidate: Candidate) -> str:
    """What the render shows, in its language: the entity for a model that draws what it is
    asked, the icon's name for the procedural renderer (never an entity it did not draw)."""
    spec = candidate.spec
    if candidate.render.get("backend") in DRAWS_ICONS:
        return ctx.drawn_as[spec.language][spec.entity_shape]
    return spec.entity_name


def copy_text(candidate: Candidate) -> str:
    return quote_copy(candidate.spec.copy, candidate.spec.language)


def sample_meta(
    ctx: TaskContext,
    task: str,
    group: Group,
    target: Candidate,
    sources: list[Candidate],
    instruction: str,
    params: dict[str, Any],
    pair_scores: dict[str, float] | None = None,
) -> dict[str, Any]:
    spec = target.spec
    return {
        "task": task,
        "split": ctx.split,
        "language": spec.language,
        "theme": spec.theme,
        "instruction": instruction,
        "entity": {"id": spec.entity_id, "name": spec.entity_name},
        "style": {"id": spec.style_id, "name": spec.style_name},
        "layout": spec.layout_id,
        "aspect_ratio": spec.aspect_ratio,
        "prompt": spec.prompt,
        "negative_prompt": spec.negative_prompt,
        "copy": [{"role": line.role, "text": line.text} for line in spec.copy],
        "seeds": {"target": spec.seed, "sources": [s.spec.seed for s in sources]},
        "models": {
            "renderer": target.render.get("model"),
            "ocr": target.details.get("ocr", {}).get("backend"),
            "subject": target.details.get("subject", {}).get("source"),
        },
        "scores": {
            "target": target.scores,
            "sources": [s.scores for s in sources],
            "pair": pair_scores or {},
        },
        "params": params,
        "lineage": {
            "recipe_hash": ctx.recipe_hash,
            "generation_hash": ctx.generation_hash,
            "group_id": group.group_id,
            "group_kind": group.kind,
            "block": group.block,
            "target": target.key,
            "sources": [s.key for s in sources],
            "datapipe_version": datapipe.__version__,
        },
    }


def make_sample(
    ctx: TaskContext,
    task: str,
    key: str,
    target: Candidate,
    sources: list[bytes],
    mask: bytes | None,
    instruction: str,
    meta: dict[str, Any],
) -> Sample:
    return Sample(
        key=key,
        task=task,
        split=ctx.split,
        language=target.spec.language,
        theme=target.spec.theme,
        sources=sources,
        target=target.image,
        mask=mask,
        instruction=instruction,
        meta={"key": key, **meta},
    )


def reject(
    task: str, candidate: Candidate, reason: str, detail: str, **scores: float
) -> PairReject:
    return PairReject(
        task=task, candidate_key=candidate.key, reason=reason, detail=detail, scores=scores
    )


def color_similarity(a: Image.Image, b: Image.Image, bins: int = 4) -> float:
    """Histogram intersection of coarse RGB histograms: 1.0 for the same palette use."""

    def hist(image: Image.Image) -> np.ndarray:
        small = np.asarray(image.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR))
        q = (small // (256 // bins)).reshape(-1, 3).astype(np.int64)
        idx = q[:, 0] * bins * bins + q[:, 1] * bins + q[:, 2]
        counts = np.bincount(idx, minlength=bins**3).astype(np.float64)
        return counts / counts.sum()

    return round(float(np.minimum(hist(a), hist(b)).sum()), 4)


def reference_builder(task: str) -> Callable[..., Sample]:
    """The builder of a task whose source is another poster of the same group."""

    def build(
        ctx: TaskContext,
        group: Group,
        reference: Candidate,
        target: Candidate,
        scores: dict[str, float | None],
    ) -> Sample:
        return reference_sample(ctx, task, group, reference, target, scores)

    return build


def reference_sample(
    ctx: TaskContext,
    task: str,
    group: Group,
    reference: Candidate,
    target: Candidate,
    scores: dict[str, float | None],
) -> Sample:
    """A pair whose source is another poster of the same group (layout, style)."""
    spec = target.spec
    key = f"{task}-{target.key}-from{reference.spec.member}"
    rng = ctx.rng(task, key)
    values = {"entity": spec.entity_name, "copy": copy_text(target)}
    if task == "layout":
        values["style"] = spec.style_name
    instruction = ctx.instruction(task, spec.language, rng, **values)
    params = {"reference": reference.key, "reference_entity": reference.spec.entity_id}
    meta = sample_meta(ctx, task, group, target, [reference], instruction, params, scores)
    return make_sample(ctx, task, key, target, [reference.image], None, instruction, meta)


def reference_mismatch(
    task: str, reference: Candidate, target: Candidate, shared: str
) -> PairReject | None:
    """A reference must share `shared` (layout_id or style_id) and show another entity."""
    if reference.spec.entity_id == target.spec.entity_id:
        return reject(task, target, f"{task}_same_entity", "reference shows the same entity")
    if getattr(reference.spec, shared) != getattr(target.spec, shared):
        return reject(task, target, f"{task}_spec_differs", f"reference has another {shared}")
    return None
