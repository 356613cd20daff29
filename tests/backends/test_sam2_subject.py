"""Sam2Subject on tiny random models: OWLv2 / Grounding DINO boxes, SAM-2 hiera-tiny masks.

Everything is loaded through the real paths: the detector folder with from_pretrained
(local_files_only) and the SAM-2 checkpoint through sam2's build_sam2.
"""

from __future__ import annotations

import numpy as np
import pytest
from tiny_vision import (
    SAM2_TINY_CONFIG,
    SAM2_TINY_OVERRIDES,
    build_tiny_grounding_dino,
    build_tiny_owlv2,
    build_tiny_sam2,
    poster_image,
)

from datapipe.backends.sam2_subject import NO_BOX, Sam2Subject, SubjectResult
from datapipe.errors import DatapipeError
from datapipe.recipe import Sam2Config

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sam2")

KINDS = ["owlv2", "grounding_dino"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sam2")
    return {
        "checkpoint": build_tiny_sam2(folder),
        "owlv2": build_tiny_owlv2(folder),
        "grounding_dino": build_tiny_grounding_dino(folder),
    }


def config(files, kind="owlv2", **changes) -> Sam2Config:
    values = {
        "config": SAM2_TINY_CONFIG,
        "checkpoint": str(files["checkpoint"]),
        "detector": str(files[kind]),
        "detector_kind": kind,
        "box_threshold": 0.0,
        "device": "cpu",
        **changes,
    }
    return Sam2Config(**values)


@pytest.fixture(scope="module", params=KINDS)
def subject(request, files):
    backend = Sam2Subject(config(files, request.param), overrides=SAM2_TINY_OVERRIDES)
    backend.load()
    return backend


@pytest.fixture(scope="module")
def image():
    return poster_image(200, 120, seed=0)


def test_init_loads_nothing(files):
    backend = Sam2Subject(config(files), overrides=SAM2_TINY_OVERRIDES)
    assert backend.predictor is None and backend.detector is None


@pytest.fixture(scope="module")
def found(subject, image):
    return subject.segment(image, "red apple")


def test_segment_returns_a_mask_of_the_image_size(found, image):
    assert isinstance(found, SubjectResult)
    assert found.reason is None
    assert found.mask is not None
    assert found.mask.dtype == bool
    assert found.mask.shape == (image.height, image.width)
    x0, y0, x1, y1 = found.box
    assert all(isinstance(v, int) for v in found.box)
    assert 0 <= x0 < x1 <= image.width
    assert 0 <= y0 < y1 <= image.height
    assert isinstance(found.detector_score, float)
    assert 0.0 < found.detector_score <= 1.0
    assert isinstance(found.sam_score, float)


def test_same_input_same_result(subject, image, found):
    again = subject.segment(image, "red apple")
    assert again.box == found.box
    assert again.detector_score == found.detector_score
    assert again.sam_score == found.sam_score
    np.testing.assert_array_equal(again.mask, found.mask)


def test_nothing_above_the_threshold_gives_no_mask(files, image):
    # Scores are sigmoids, never above 1.0, the largest threshold the recipe allows.
    strict = Sam2Subject(config(files, box_threshold=1.0), overrides=SAM2_TINY_OVERRIDES)
    result = strict.segment(image, "red apple")  # loads on first use
    assert result.mask is None
    assert result.box is None
    assert result.sam_score is None
    assert result.reason == NO_BOX == "no box above threshold"
    assert isinstance(result.detector_score, float)  # the best score is still reported
    assert 0.0 < result.detector_score <= 1.0


def test_grayscale_and_long_prompts(subject):
    gray = poster_image(90, 160, seed=3).convert("L")
    result = subject.segment(gray, "a very long description of a subject " * 4)
    assert result.mask is not None and result.mask.shape == (160, 90)
    # Cut to the detector's text context (tiny OWLv2: 16 tokens, Grounding DINO: 32), and
    # said so.
    assert result.text_truncated is True
    assert subject.segment(gray, "red apple").text_truncated is False


def test_version_names_the_models(subject, files):
    assert files["checkpoint"].name in subject.version
    assert subject.config.detector_kind in subject.version


def test_missing_checkpoint_is_a_one_line_error_naming_it(files, tmp_path):
    missing = tmp_path / "sam2.pt"
    with pytest.raises(DatapipeError) as err:
        Sam2Subject(config(files, checkpoint=str(missing))).load()
    assert str(missing) in str(err.value) and "\n" not in str(err.value)


def test_missing_detector_is_a_one_line_error_naming_it(files, tmp_path):
    missing = tmp_path / "owlv2"
    with pytest.raises(DatapipeError) as err:
        Sam2Subject(config(files, detector=str(missing))).load()
    assert str(missing) in str(err.value) and "\n" not in str(err.value)


def test_detector_of_another_kind_is_refused(files):
    wrong = config(files, "owlv2", detector=str(files["grounding_dino"]))
    with pytest.raises(DatapipeError, match="detector_kind"):
        Sam2Subject(wrong, SAM2_TINY_OVERRIDES).load()


@pytest.mark.parametrize("content", ["wrong-keys", "not-a-checkpoint"])
def test_a_checkpoint_that_does_not_fit_is_one_line(files, tmp_path, content):
    bad = tmp_path / "bad.pt"
    if content == "wrong-keys":
        torch.save({"model": {"not_a_sam2_weight": torch.zeros(1)}}, bad)
    else:
        bad.write_bytes(b"this is not a torch checkpoint")
    with pytest.raises(DatapipeError) as err:
        Sam2Subject(config(files, checkpoint=str(bad)), SAM2_TINY_OVERRIDES).load()
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_unknown_sam2_config_is_named(files):
    with pytest.raises(DatapipeError, match="no_such_config"):
        Sam2Subject(config(files, config="configs/no_such_config.yaml")).load()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda_fails_at_load(files):
    with pytest.raises(DatapipeError, match="CUDA is not available"):
        Sam2Subject(config(files, device="cuda")).load()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("kind", KINDS)
def test_tiny_models_on_cuda_give_the_same_shapes(files, image, kind):
    backend = Sam2Subject(config(files, kind, device="cuda"), overrides=SAM2_TINY_OVERRIDES)
    result = backend.segment(image, "red apple")
    assert result.mask is not None and result.mask.dtype == bool
    assert result.mask.shape == (image.height, image.width)
    assert isinstance(result.detector_score, float) and isinstance(result.sam_score, float)


class Spy:
    """Wraps a callable and records the keyword arguments of each call."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        self.calls: list[dict] = []

    def __call__(self, *args, **kwargs):
        self.calls.append(kwargs)
        return self.wrapped(*args, **kwargs)

    def __getattr__(self, name):  # the processor's post-processing, its tokenizer
        return getattr(self.wrapped, name)


def test_every_box_above_the_floor_is_segmented_and_their_masks_united(files, image):
    backend = Sam2Subject(config(files, max_boxes=3), overrides=SAM2_TINY_OVERRIDES)
    backend.load()
    backend.processor = Spy(backend.processor)
    backend.predictor.predict = Spy(backend.predictor.predict)
    result = backend.segment(image, "cherries")
    # The detector read exactly the English phrase; SAM-2 got exactly the chosen boxes.
    (seen,) = backend.processor.calls
    assert seen["text"] == [["cherries"]]
    (prompted,) = backend.predictor.predict.calls
    assert prompted["box"].tolist() == result.boxes
    assert len(result.boxes) == 3  # random scores are all above a 0.0 floor
    assert result.box == [
        min(b[0] for b in result.boxes),
        min(b[1] for b in result.boxes),
        max(b[2] for b in result.boxes),
        max(b[3] for b in result.boxes),
    ]
    singles = [
        backend.predictor.predict(box=np.asarray(b, dtype=np.float32), multimask_output=False)[0][0]
        > 0.5
        for b in result.boxes
    ]
    np.testing.assert_array_equal(result.mask, np.any(singles, axis=0))


def test_grounding_dino_reads_the_phrase_lower_case_with_a_full_stop(files, image):
    backend = Sam2Subject(config(files, "grounding_dino"), overrides=SAM2_TINY_OVERRIDES)
    backend.load()
    backend.processor = Spy(backend.processor)
    backend.segment(image, "Graduation cap on a resume")
    assert backend.processor.calls[0]["text"] == "graduation cap on a resume."


def test_the_box_floor_defaults_per_detector_kind(files):
    values = {"checkpoint": "x.pt", "detector": "d"}
    assert Sam2Config(**values, detector_kind="grounding_dino").box_threshold == 0.3
    assert Sam2Config(**values, detector_kind="owlv2").box_threshold == 0.1
    assert Sam2Config(**values, detector_kind="owlv2", box_threshold=0.2).box_threshold == 0.2
