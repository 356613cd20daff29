"""SubjectStage: subject area and box from the subject mask.

The offline backend reads the renderer's own mask (the procedural renderer knows
exactly what it drew); the cluster backend (SAM-2) plugs in here with the same scores.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from PIL import Image

from datapipe.images import BadImageError, load_mask
from datapipe.records import Candidate
from datapipe.stages.base import CandidateStage, Resources


class SubjectStage(CandidateStage):
    name = "subject"
    resources: ClassVar[Resources] = Resources(cpus=0.25)
    batch_size: ClassVar[int] = 4
    produces: ClassVar[tuple[str, ...]] = ("subject.area", "subject.box_area", "subject.box_fill")

    def setup(self) -> None:
        backend = self.recipe.stages.subject.backend
        if backend != "renderer":
            raise ValueError(f"stages.subject.backend: unknown backend {backend!r}")

    def annotate(self, candidate: Candidate, image: Image.Image) -> None:
        s = candidate.scores
        if candidate.subject_mask is None:
            candidate.details["subject"] = {"error": "the renderer returned no subject mask"}
            return
        try:
            mask = load_mask(candidate.subject_mask)
        except BadImageError as fault:
            candidate.details["subject"] = {"error": f"subject mask: {fault}"}
            return
        if mask.shape != (image.height, image.width):
            candidate.details["subject"] = {
                "error": f"mask size {mask.shape[::-1]} differs from image {image.size}"
            }
            return
        area = float(mask.mean())
        ys, xs = np.nonzero(mask)
        box = None
        box_area = 0.0
        if len(xs):
            box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
            box_area = (box[2] - box[0]) * (box[3] - box[1]) / mask.size
        s["subject.area"] = round(area, 5)
        s["subject.box_area"] = round(box_area, 5)
        s["subject.box_fill"] = round(area / box_area, 4) if box_area else None
        candidate.details["subject"] = {"source": "renderer", "box": box}
