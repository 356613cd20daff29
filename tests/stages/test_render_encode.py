"""The render stage hands pixels on; the image stage encodes them (off the GPU worker)."""

from __future__ import annotations

import numpy as np
from helpers import first_group, force_faults, with_variant

from datapipe.images import decode, encode_png
from datapipe.stages.image_check import ImageStage
from datapipe.stages.registry import build_stage
from datapipe.stages.render import RenderStage


def render(loaded, group):
    stage = build_stage(RenderStage, loaded)
    stage.setup()
    return force_faults(stage).process_batch([group])[0]


def test_render_leaves_pixels_raw_and_the_image_stage_encodes_them(quickstart):
    group = render(quickstart, first_group(quickstart))
    candidate = group.candidates[0]
    raw = candidate.raw
    assert candidate.image == b"" and raw is not None and raw.file is None
    assert "raw" not in candidate.metadata()
    build_stage(ImageStage, quickstart).process_batch([group])
    level = quickstart.recipe.stages.render.png_compress_level
    assert candidate.raw is None
    assert candidate.image == encode_png(raw.image, level)
    assert candidate.subject_mask is None  # the subject stage finds it from the pixels
    assert candidate.scores["image.decodes"] == 1.0
    assert np.array_equal(np.asarray(decode(candidate.image)), np.asarray(raw.image))


def test_a_truncated_fault_is_the_file_the_renderer_wrote(quickstart):
    group = render(quickstart, with_variant(first_group(quickstart), "truncated"))
    build_stage(ImageStage, quickstart).process_batch([group])
    candidate = group.candidates[0]
    assert len(candidate.image) > 0 and candidate.scores["image.decodes"] == 0.0


def test_a_rendered_candidate_is_not_rendered_again(quickstart):
    group = render(quickstart, first_group(quickstart))
    raw = group.candidates[0].raw
    assert render(quickstart, group).candidates[0].raw is raw
