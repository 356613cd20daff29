"""PhashStage: a 64-bit perceptual hash per render, for near-duplicate checks."""

from __future__ import annotations

from typing import ClassVar

import imagehash
from PIL import Image

from datapipe.records import Candidate
from datapipe.stages.base import CandidateStage, Resources


class PhashStage(CandidateStage):
    name = "phash"
    resources: ClassVar[Resources] = Resources(cpus=0.25)
    batch_size: ClassVar[int] = 4

    def annotate(self, candidate: Candidate, image: Image.Image) -> None:
        value = imagehash.phash(image)
        candidate.details["phash"] = str(value)
