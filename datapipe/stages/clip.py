"""ClipStage: how well a render matches its subject and copy, and its embedding.

Scores are cosines from open_clip, with a multilingual model on the cluster (a zh poster
is scored in Chinese). The texts are what fits a CLIP context and what a render can
show: `clip.image_prompt` scores the subject (the entity's description) and the copy
lines, not the whole styled prompt (hundreds of tokens of style and layout wording);
`clip.image_entity` scores the entity's name and description. A text longer than the
model's context is still cut by the tokenizer, never silently: `clip.text_truncated`
is 1 for such a render, 0 otherwise, and the run counts it per stage in run.json.
The image embedding is kept on the candidate so that task builders can compare two
renders (style and rescale pairs) without a model.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from PIL import Image

from datapipe.images import BadImageError, load_mask, load_rgb
from datapipe.records import Candidate, Group, PromptSpec
from datapipe.stages.base import Resources, Stage

SEPARATOR = {"zh": "。", "en": ". "}


def prompt_text(spec: PromptSpec) -> str:
    """The subject and the copy sentence: what `clip.image_prompt` compares the render with."""
    sep = SEPARATOR.get(spec.language, ". ")
    copy = sep.join(line.text for line in spec.copy)
    return f"{spec.entity_description}{sep}{copy}" if copy else spec.entity_description


def entity_text(spec: PromptSpec) -> str:
    return f"{spec.entity_name}: {spec.entity_description}"


class ClipStage(Stage):
    name = "clip"
    resources: ClassVar[Resources] = Resources(cpus=1.0)
    batch_size: ClassVar[int] = 16
    produces: ClassVar[tuple[str, ...]] = (
        "clip.image_prompt",
        "clip.image_entity",
        "clip.text_truncated",
    )

    def setup(self) -> None:
        from datapipe.backends.clip_openclip import ClipScorer

        self.scorer = ClipScorer(self.config)
        self.scorer.load()

    def process_batch(self, groups: list[Group]) -> list[Group]:
        readable: list[Candidate] = []
        images = []
        for group in groups:
            for candidate in group.candidates:
                if candidate.details.get("image", {}).get("error"):
                    continue
                try:
                    images.append(load_rgb(candidate.image))
                except BadImageError:
                    continue
                readable.append(candidate)
        if not readable:
            return groups
        prompt_texts = [prompt_text(c.spec) for c in readable]
        entity_texts = [entity_text(c.spec) for c in readable]
        context = self.scorer.context_length
        prompt_tokens = self.scorer.count_tokens(prompt_texts)
        entity_tokens = self.scorer.count_tokens(entity_texts)
        embeddings = self.scorer.encode_images(images)
        prompts = self.scorer.encode_texts(prompt_texts)
        entities = self.scorer.encode_texts(entity_texts)
        for i, candidate in enumerate(readable):
            (p_len, p_unk), (e_len, e_unk) = prompt_tokens[i], entity_tokens[i]
            truncated = p_len > context or e_len > context
            candidate.scores["clip.image_prompt"] = round(float(embeddings[i] @ prompts[i]), 5)
            candidate.scores["clip.image_entity"] = round(float(embeddings[i] @ entities[i]), 5)
            candidate.scores["clip.text_truncated"] = 1.0 if truncated else 0.0
            candidate.details["clip"] = {
                "model": self.scorer.version,
                "prompt_text": prompt_texts[i],
                "tokens": {"prompt": p_len, "entity": e_len, "context": context},
                "unknown_tokens": p_unk + e_unk,
                "embedding": [round(float(x), 5) for x in embeddings[i]],
            }
        self.embed_subjects(readable, images)
        return groups

    def embed_subjects(self, candidates: list[Candidate], images: list[Image.Image]) -> None:
        """The masked subject crop's embedding, for pairs that must show one subject (or
        must not): tasks/subjects.py compares them."""
        masked = [
            (c, subject_cutout(c, image)) for c, image in zip(candidates, images, strict=True)
        ]
        masked = [(c, crop) for c, crop in masked if crop is not None]
        if not masked:
            return
        vectors = self.scorer.encode_images([crop for _, crop in masked])
        for (candidate, _), vector in zip(masked, vectors, strict=True):
            candidate.details["clip"]["subject_embedding"] = [round(float(x), 5) for x in vector]


def subject_cutout(candidate: Candidate, image: Image.Image) -> Image.Image | None:
    """The subject's box with everything off its mask grey; None without a mask."""
    if candidate.subject_mask is None:
        return None
    mask = load_mask(candidate.subject_mask)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0 or mask.shape != (image.height, image.width):
        return None
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    grey = Image.new("RGB", image.size, (128, 128, 128))
    return Image.composite(image, grey, Image.fromarray(mask)).crop(box)
