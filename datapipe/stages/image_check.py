"""ImageStage: encode the render's pixels, then: is the file a usable image at all?

Truncated files, zero-byte files, the wrong mode or the wrong size become scores that
the filter turns into recorded rejections; the annotators after it skip such images.
Encoding happens here, on a CPU worker, rather than in the render stage (see render.py).
"""

from __future__ import annotations

from typing import ClassVar

from datapipe.images import BadImageError, decode
from datapipe.records import Group
from datapipe.stages.base import Resources, Stage
from datapipe.stages.render import encode_render


class ImageStage(Stage):
    name = "image"
    resources: ClassVar[Resources] = Resources(cpus=0.25)
    batch_size: ClassVar[int] = 4
    produces: ClassVar[tuple[str, ...]] = (
        "image.bytes",
        "image.decodes",
        "image.rgb",
        "image.size_match",
    )

    def process_batch(self, groups: list[Group]) -> list[Group]:
        compress_level = self.config.png_compress_level
        for group in groups:
            for candidate in group.candidates:
                encode_render(candidate, compress_level)
                scores = candidate.scores
                scores["image.bytes"] = float(len(candidate.image))
                try:
                    image = decode(candidate.image)
                except BadImageError as fault:
                    scores["image.decodes"] = 0.0
                    candidate.details["image"] = {"error": str(fault), "code": fault.code}
                    continue
                scores["image.decodes"] = 1.0
                scores["image.rgb"] = float(image.mode == "RGB")
                spec = candidate.spec
                scores["image.size_match"] = float(image.size == (spec.width, spec.height))
                info = {"mode": image.mode, "width": image.width, "height": image.height}
                if image.mode != "RGB":
                    info["error"] = f"wrong_mode: mode {image.mode}, expected RGB"
                    info["code"] = "wrong_mode"
                candidate.details["image"] = info
        return groups
