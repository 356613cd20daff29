"""SubjectStage: the subject's mask, area, box and how sure the segmenter is of it.

Backends: `pixels` (offline) finds the subject from the image alone: the ground from
the border colours, the text the OCR stage read taken out, the largest solid piece
left (backends/subject_pixels.py); `sam2` (the cluster) finds the entity with a
text-grounded detector, prompted with the entity's English detector phrase (what is
drawn, whatever the poster's language), and refines every box above the floor into a
mask with SAM-2 (their union). Neither sees what a renderer knows of its own drawing.
When nothing is found the candidate is scored as having no subject (area 0), with the
reason stored, so the filter rejects it as `subject_missing`; `subject.confidence`
feeds the `subject_uncertain` rule, which rejects a mask not to be trusted before a
fill or identity pair is cut from it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from PIL import Image

from datapipe.backends import subject_pixels
from datapipe.details import ocr_lines
from datapipe.images import mask_to_png
from datapipe.records import Candidate
from datapipe.stages.base import CandidateStage, Resources


class SubjectStage(CandidateStage):
    name = "subject"
    resources: ClassVar[Resources] = Resources(cpus=0.25)
    batch_size: ClassVar[int] = 4
    produces: ClassVar[tuple[str, ...]] = (
        "subject.area",
        "subject.box_area",
        "subject.box_fill",
        "subject.detector_score",
        "subject.sam_score",
        "subject.boxes",
        "subject.text_truncated",
        "subject.confidence",
    )

    def setup(self) -> None:
        config = self.config
        self.segmenter = None
        if config.backend == "sam2":
            from datapipe.backends.sam2_subject import Sam2Subject

            self.segmenter = Sam2Subject(config.sam2, overrides=list(config.sam2.overrides))
            self.segmenter.load()

    def annotate(self, candidate: Candidate, image: Image.Image) -> None:
        s = candidate.scores
        info: dict = {"source": self.config.backend}
        if self.segmenter is not None:
            phrase = candidate.spec.entity_detect
            if not phrase.isascii() or not phrase.strip():
                # Never the poster-language name: an English-only detector reads zh as [UNK].
                s["subject.detector_score"] = None
                s["subject.sam_score"] = None
                s["subject.boxes"] = None
                s["subject.text_truncated"] = None
                candidate.details["subject"] = {
                    **info,
                    "error": f"no English detector phrase for entity {candidate.spec.entity_id!r}"
                    " (the library's `detect` field)",
                }
                return
            result = self.segmenter.segment(image, phrase)
            s["subject.detector_score"] = round(float(result.detector_score), 5)
            s["subject.sam_score"] = (
                round(float(result.sam_score), 5) if result.sam_score is not None else None
            )
            s["subject.boxes"] = len(result.boxes)
            s["subject.text_truncated"] = 1.0 if result.text_truncated else 0.0
            s["subject.confidence"] = min(
                s["subject.detector_score"], s["subject.sam_score"] or 0.0
            )
            info.update(
                model=self.segmenter.version,
                reason=result.reason,
                prompt=phrase,
                boxes=result.boxes,
            )
            mask = result.mask
            if mask is None:
                mask = np.zeros((image.height, image.width), dtype=bool)
        else:
            s["subject.detector_score"] = None
            s["subject.sam_score"] = None
            s["subject.boxes"] = None
            s["subject.text_truncated"] = None
            # the copy lines OCR matched, not every read: OCR also "reads" inside subjects
            text = [line.box for line in ocr_lines(candidate) if line.found and line.box]
            found = subject_pixels.segment(image, text)
            s["subject.confidence"] = found.confidence
            info.update(
                model=subject_pixels.VERSION, reason=found.reason, ground_inside=found.ground_inside
            )
            mask = found.mask
        candidate.subject_mask = mask_to_png(mask) if mask.any() else None
        if mask.shape != (image.height, image.width):
            candidate.details["subject"] = {
                **info,
                "error": f"mask size {mask.shape[::-1]} differs from image {image.size}",
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
        candidate.details["subject"] = {**info, "box": box}
