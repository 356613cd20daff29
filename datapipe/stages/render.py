"""RenderStage: specs in, candidate images and the renderer's ground truth out.

Timings are measured by the runner per stage, never stored on a candidate: shards
must be byte-identical across runs.

A render that fails is recorded on its candidate (the filter rejects it with a
reason and the summary counts it); one bad spec never stops a multi-day job.
"""

from __future__ import annotations

from typing import ClassVar

from datapipe.backends.procedural.renderer import ProceduralRenderer
from datapipe.backends.simulated import FixedCostRenderer
from datapipe.images import encode_png, mask_to_png
from datapipe.records import Group
from datapipe.stages.base import Resources, Stage


class RenderStage(Stage):
    name = "render"
    resources: ClassVar[Resources] = Resources(cpus=1.0)
    batch_size: ClassVar[int] = 4
    produces: ClassVar[tuple[str, ...]] = ("render.ok",)

    def setup(self) -> None:
        config = self.recipe.stages.render
        if config.backend == "simulated":
            self.renderer = FixedCostRenderer(self.loaded.library, config.simulated_seconds)
        else:
            self.renderer = ProceduralRenderer(self.loaded.library)
        self.compress_level = config.png_compress_level

    def process_batch(self, groups: list[Group]) -> list[Group]:
        for group in groups:
            for candidate in group.candidates:
                if candidate.image or "render" in candidate.details:
                    continue
                spec = candidate.spec
                try:
                    result = self.renderer.render(spec)
                except Exception as exc:  # recorded as a rejection, see module docstring
                    candidate.details["render"] = {"error": f"{type(exc).__name__}: {exc}"}
                    candidate.scores["render.ok"] = 0.0
                    continue
                image = encode_png(result.image, self.compress_level)
                if spec.variant == "truncated":
                    image = image[: len(image) // 2]
                candidate.image = image
                candidate.subject_mask = mask_to_png(result.subject_mask)
                candidate.truth = result.truth
                candidate.scores["render.ok"] = 1.0
                candidate.render = {
                    "backend": self.recipe.stages.render.backend,
                    "model": self.renderer.version,
                    "seed": spec.seed,
                    "variant": spec.variant,
                    "width": spec.width,
                    "height": spec.height,
                }
        return groups
