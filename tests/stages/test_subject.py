"""SubjectStage's SAM-2 call site: what the detector is asked, whatever the poster's language."""

from __future__ import annotations

import dataclasses

import numpy as np
from helpers import first_group
from PIL import Image

from datapipe.backends.sam2_subject import SubjectResult
from datapipe.records import Candidate
from datapipe.stages.registry import build_stage
from datapipe.stages.subject import SubjectStage


class SpySegmenter:
    """Stands in for Sam2Subject: records each prompt, returns a mask over two boxes."""

    version = "spy"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def segment(self, image: Image.Image, prompt: str) -> SubjectResult:
        self.prompts.append(prompt)
        mask = np.zeros((image.height, image.width), dtype=bool)
        boxes = [[2, 2, 10, 10], [20, 20, 30, 40]]
        for x0, y0, x1, y1 in boxes:
            mask[y0:y1, x0:x1] = True
        return SubjectResult(mask, [2, 2, 30, 40], 0.9, 0.8, None, boxes)


def candidate(quickstart, language: str, detect: str | None = None) -> Candidate:
    spec = first_group(quickstart).candidates[0].spec
    entity = quickstart.library.entity(spec.entity_id)
    spec = dataclasses.replace(
        spec,
        language=language,
        entity_name=getattr(entity, language).name,
        entity_detect=entity.detect if detect is None else detect,
    )
    return Candidate(spec=spec)


def stage_with_spy(quickstart) -> tuple[SubjectStage, SpySegmenter]:
    stage = build_stage(SubjectStage, quickstart)
    stage.segmenter = SpySegmenter()
    return stage, stage.segmenter


def test_a_zh_poster_is_detected_with_the_english_phrase(quickstart):
    stage, spy = stage_with_spy(quickstart)
    image = Image.new("RGB", (48, 64), "white")
    for language in ("zh", "en"):
        c = candidate(quickstart, language)
        stage.annotate(c, image)
        assert spy.prompts[-1] == quickstart.library.entity(c.spec.entity_id).detect
        assert spy.prompts[-1].isascii()
        assert c.scores["subject.boxes"] == 2
        assert c.scores["subject.text_truncated"] == 0.0
        assert c.details["subject"]["prompt"] == spy.prompts[-1]
        assert c.details["subject"]["boxes"] == [[2, 2, 10, 10], [20, 20, 30, 40]]
        assert c.scores["subject.area"] == round((8 * 8 + 10 * 20) / (48 * 64), 5)


def test_without_an_english_phrase_the_detector_is_not_asked(quickstart):
    stage, spy = stage_with_spy(quickstart)
    image = Image.new("RGB", (48, 64), "white")
    for detect in ("", "冰咖啡"):
        c = candidate(quickstart, "zh", detect=detect)
        stage.annotate(c, image)
        assert spy.prompts == []
        assert "no English detector phrase" in c.details["subject"]["error"]
        assert "subject.area" not in c.scores  # the filter rejects it, with the reason stored
