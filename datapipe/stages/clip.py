"""ClipStage: how well a render matches its prompt and its entity, and its embedding.

Scores are cosines from open_clip (image vs the full prompt, image vs the entity's
name and description). The image embedding is kept on the candidate so that task
builders can compare two renders (style and rescale pairs) without a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from datapipe.images import BadImageError, load_rgb
from datapipe.records import Candidate, Group
from datapipe.stages.base import Resources, Stage


class ClipStage(Stage):
    name = "clip"
    resources: ClassVar[Resources] = Resources(cpus=1.0)
    batch_size: ClassVar[int] = 16
    produces: ClassVar[tuple[str, ...]] = ("clip.image_prompt", "clip.image_entity")

    def setup(self) -> None:
        from datapipe.backends.clip_openclip import ClipScorer

        config = self.recipe.stages.clip
        architecture = None
        if config.model_config_file:
            architecture = json.loads(Path(config.model_config_file).read_text())
        self.scorer = ClipScorer(config, model_config=architecture)
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
        embeddings = self.scorer.encode_images(images)
        prompts = self.scorer.encode_texts([c.spec.prompt for c in readable])
        entities = self.scorer.encode_texts(
            [f"{c.spec.entity_name}: {c.spec.entity_description}" for c in readable]
        )
        for i, candidate in enumerate(readable):
            candidate.scores["clip.image_prompt"] = round(float(embeddings[i] @ prompts[i]), 5)
            candidate.scores["clip.image_entity"] = round(float(embeddings[i] @ entities[i]), 5)
            candidate.details["clip"] = {
                "model": self.scorer.version,
                "embedding": [round(float(x), 5) for x in embeddings[i]],
            }
        return groups
