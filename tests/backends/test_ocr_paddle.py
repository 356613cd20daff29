"""The paddleocr backend: a worker process under another virtualenv's python.

Always run (no paddle here): the real client against the real worker script under this
python, where paddleocr is absent; and the client's lifecycle against stand-in workers,
small scripts that speak the worker protocol but read no text (they die, hang or echo a
digest of the pixels they were sent), through OcrStage and the filter.

With DATAPIPE_PADDLE_PYTHON pointing at the python of a paddle env made by
scripts/make-paddle-env.sh (PP-OCRv6 small, converted from the ONNX models in the rapidocr
wheel, in `models/` next to its bin/): real PaddleOCR reads rendered posters, and OcrStage
scores them exactly as it scores RapidOCR's reading of the same posters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, write_recipe
from helpers import first_group
from PIL import Image

from datapipe.backends import ocr_paddle
from datapipe.backends.ocr_paddle import OcrImageError, PaddleOcrBackend, quad_box
from datapipe.errors import DatapipeError, MissingDependencyError, RecipeError
from datapipe.images import load_rgb
from datapipe.loading import load_recipe
from datapipe.plan import plan_groups
from datapipe.recipe import PaddleOcrConfig
from datapipe.stages.filter import FilterStage
from datapipe.stages.image_check import ImageStage
from datapipe.stages.ocr import OcrStage
from datapipe.stages.prompt import PromptStage
from datapipe.stages.registry import build_stage
from datapipe.stages.render import RenderStage

PADDLE_PYTHON = os.environ.get("DATAPIPE_PADDLE_PYTHON")
needs_paddle = pytest.mark.skipif(
    not PADDLE_PYTHON,
    reason="set DATAPIPE_PADDLE_PYTHON to a paddle env's python (scripts/make-paddle-env.sh)",
)

STANDIN = '''#!{python}
"""A stand-in for the paddle env's python: speaks the worker protocol, reads no text."""
import base64, hashlib, json, os, sys, time
from pathlib import Path

mode, state = {mode!r}, Path({state!r})
starts = int(state.read_text()) + 1 if state.exists() else 1
state.write_text(str(starts))


def send(message):
    sys.stdout.write(json.dumps(message) + "\\n")
    sys.stdout.flush()


send({{"event": "hello", "protocol": 1, "python": "3", "pid": os.getpid()}})
for raw in sys.stdin:
    request = json.loads(raw)
    if request["op"] == "close":
        break
    if request["op"] == "init":
        send({{"id": request["id"], "ok": True, "versions": {{"paddleocr": "stand-in"}}}})
        continue
    if mode == "exit" or (mode == "exit-once" and starts == 1):
        sys.stderr.write("stand-in: dying on purpose\\n")
        sys.exit(3)
    if mode == "hang":
        time.sleep(600)
    if mode == "refuse":
        message = "ValueError: stand-in refuses this image"
        send({{"id": request["id"], "ok": False, "error": "read_failed", "message": message}})
        continue
    digest = hashlib.sha256(base64.b64decode(request["rgb"])).hexdigest()[:16]
    text = f"{{request['width']}}x{{request['height']}} {{digest}}"
    quad = [[1.5, 2.2], [9.1, 2.0], [9.0, 7.6], [1.4, 7.9]]
    line = {{"text": text, "score": 0.75, "quad": quad}}
    send({{"id": request["id"], "ok": True, "lines": [line]}})
'''


def standin(folder: Path, mode: str) -> Path:
    path = folder / f"python-{mode}"
    state = folder / f"starts-{mode}"
    path.write_text(STANDIN.format(python=sys.executable, mode=mode, state=str(state)))
    path.chmod(0o755)
    return path


def starts(python: Path) -> int:
    state = python.with_name(python.name.replace("python-", "starts-"))
    return int(state.read_text()) if state.exists() else 0


def config(python: str | Path, folder: Path, **changes) -> PaddleOcrConfig:
    models = folder / "models"
    for name in ("det", "rec"):
        (models / name).mkdir(parents=True, exist_ok=True)
    values = {
        "python": str(python),
        "det_model_dir": str(models / "det"),
        "det_model_name": "PP-OCRv6_small_det",
        "rec_model_dir": str(models / "rec"),
        "rec_model_name": "PP-OCRv6_small_rec",
        "timeout_s": 5.0,
        "startup_timeout_s": 10.0,
        **changes,
    }
    return PaddleOcrConfig(**values)


def poster(seed: int = 0, size: tuple[int, int] = (64, 48)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


# --- the real worker script under this python (no paddleocr here) --------------------------


@pytest.mark.skipif(importlib.util.find_spec("paddleocr") is not None, reason="paddleocr here")
def test_this_env_has_no_paddleocr_and_setup_says_what_to_install(tmp_path):
    backend = PaddleOcrBackend(config(sys.executable, tmp_path))
    with pytest.raises(MissingDependencyError) as info:
        backend.load()
    message = str(info.value)
    assert "\n" not in message
    assert "needs the package paddleocr" in message
    assert f"{sys.executable} -m pip install {ocr_paddle.PADDLE_PINS}" in message
    assert "stages.ocr.paddleocr.python" in message
    assert backend.worker is None


def test_the_real_worker_refuses_a_missing_model_dir_before_importing_paddle(tmp_path):
    backend = PaddleOcrBackend(config(sys.executable, tmp_path, rec_model_dir=str(tmp_path / "no")))
    with pytest.raises(DatapipeError) as info:
        backend.load()
    assert f"rec_model_dir {tmp_path / 'no'} is not a directory" in str(info.value)
    assert "never downloaded" in str(info.value)


def test_a_missing_or_wrong_python_is_a_one_line_error(tmp_path):
    with pytest.raises(MissingDependencyError, match="does not exist") as info:
        PaddleOcrBackend(config(tmp_path / "nope" / "python", tmp_path)).load()
    assert "python -m venv /opt/paddle-ocr" in str(info.value)
    not_python = tmp_path / "not-python"
    not_python.write_text("#!/bin/sh\necho 'sh: no python here' >&2\nexit 7\n")
    not_python.chmod(0o755)
    with pytest.raises(DatapipeError) as info:
        PaddleOcrBackend(config(not_python, tmp_path)).load()
    message = str(info.value)
    assert "could not run the paddleocr worker" in message
    assert "exited with code 7" in message and "sh: no python here" in message
    assert "\n" not in message


# --- lifecycle, against stand-in workers ---------------------------------------------------


def test_pixels_travel_intact_and_lines_come_back_as_rapidocr_boxes_them(tmp_path):
    backend = PaddleOcrBackend(config(standin(tmp_path, "echo"), tmp_path))
    backend.load()
    try:
        image = poster(seed=1)
        lines = backend.read(image)
        digest = hashlib.sha256(np.asarray(image).tobytes()).hexdigest()[:16]
        assert [line.text for line in lines] == [f"64x48 {digest}"]
        assert lines[0].confidence == 0.75
        assert lines[0].box == (1, 2, 10, 8)  # floor of the mins, ceil of the maxes
        assert backend.version == "paddleocr-stand-in"
        grey = poster(seed=2).convert("L")  # converted to RGB before it is sent
        assert backend.read(grey)[0].text.startswith("64x48 ")
        worker = backend.worker.proc
    finally:
        backend.close()
    assert worker.poll() is not None, "close() must end the worker"
    assert backend.worker is None


def test_a_worker_lost_once_is_restarted_and_the_image_retried(tmp_path):
    python = standin(tmp_path, "exit-once")
    backend = PaddleOcrBackend(config(python, tmp_path))
    backend.load()
    try:
        assert backend.read(poster())[0].text.startswith("64x48 ")
        assert starts(python) == 2
        for seed in range(3):  # a worker that serves again earns its next restart
            assert backend.read(poster(seed))
        assert starts(python) == 2
    finally:
        backend.close()


def test_a_worker_that_keeps_dying_is_restarted_once_then_every_candidate_fails_fast(tmp_path):
    python = standin(tmp_path, "exit")
    backend = PaddleOcrBackend(config(python, tmp_path))
    backend.load()
    with pytest.raises(OcrImageError) as first:
        backend.read(poster())
    assert "lost twice on this image" in str(first.value)
    assert "exited with code 3" in str(first.value)
    assert "stand-in: dying on purpose" in str(first.value)
    with pytest.raises(OcrImageError, match="lost again right after a restart"):
        backend.read(poster())
    began = time.monotonic()
    for _ in range(5):
        with pytest.raises(OcrImageError, match="OCR is off for the rest"):
            backend.read(poster())
    assert time.monotonic() - began < 0.5
    assert starts(python) == 2, "restarted once, not once per candidate"
    backend.close()


def test_a_hung_worker_is_killed_at_the_deadline(tmp_path):
    python = standin(tmp_path, "hang")
    backend = PaddleOcrBackend(config(python, tmp_path, timeout_s=0.5))
    backend.load()
    hung = backend.worker.proc
    began = time.monotonic()
    with pytest.raises(OcrImageError, match=r"no reply within 0.5 s; then no reply within 0.5 s"):
        backend.read(poster(size=(1328, 1328)))  # 5 MB that a hung worker never reads
    assert time.monotonic() - began < 5
    assert hung.poll() is not None, "the hung worker is killed, not left behind"
    with pytest.raises(OcrImageError, match="OCR is off"):
        backend.read(poster())
    backend.close()


def test_an_image_the_worker_refuses_fails_alone(tmp_path):
    python = standin(tmp_path, "refuse")
    backend = PaddleOcrBackend(config(python, tmp_path))
    backend.load()
    try:
        for _ in range(2):
            with pytest.raises(OcrImageError, match="stand-in refuses this image"):
                backend.read(poster())
        assert starts(python) == 1, "a refused image is not a reason to restart"
    finally:
        backend.close()


def test_ocr_stage_records_a_lost_worker_as_a_rejection_and_the_run_goes_on(tmp_path):
    override = {
        "stages": {
            "ocr": {
                "backend": "paddleocr",
                "paddleocr": config(standin(tmp_path, "exit"), tmp_path).model_dump(),
            },
            "render": {"faults": {"rate": 0, "pair_rate": 0}},  # every image readable
        }
    }
    loaded = load_recipe(write_recipe(tmp_path, override))
    groups = [first_group(loaded), first_group(loaded, "rescale")]
    stages = [
        build_stage(RenderStage, loaded),
        build_stage(ImageStage, loaded),
        build_stage(OcrStage, loaded),
        FilterStage(loaded.recipe.split_thresholds("train")),
    ]
    try:
        for stage in stages:
            stage.setup()
            groups = stage.process_batch(groups)
    finally:
        for stage in stages:
            stage.teardown()
    assert stages[2].backend.worker is None
    candidates = [c for g in groups for c in g.candidates]
    assert len(candidates) >= 3
    for candidate in candidates:
        ocr = candidate.details["ocr"]
        assert ocr["backend"] == "paddleocr-stand-in"
        assert "paddleocr worker" in ocr["error"]
        assert not any(name.startswith("ocr.") for name in candidate.scores)
        assert not candidate.verdict.keep
        assert "text_missing" in candidate.verdict.reasons
        assert "was not computed" in candidate.verdict.details["text_missing"]


# --- recipe ---------------------------------------------------------------------------------


def test_the_paddleocr_backend_needs_its_section(tmp_path):
    with pytest.raises(RecipeError, match="needs a `paddleocr:` section"):
        load_recipe(write_recipe(tmp_path, {"stages": {"ocr": {"backend": "paddleocr"}}}))
    with pytest.raises(RecipeError, match="device"):
        bad = {"backend": "paddleocr", "paddleocr": {**config("p", tmp_path).model_dump()}}
        bad["paddleocr"]["device"] = "tpu"
        load_recipe(write_recipe(tmp_path, {"stages": {"ocr": bad}}))


def test_the_pins_in_error_messages_are_the_requirements_file():
    pins = (ROOT / "docker" / "paddle-ocr.txt").read_text().split()
    assert all(pin in pins for pin in ocr_paddle.PADDLE_PINS.split())


# --- real PaddleOCR, with DATAPIPE_PADDLE_PYTHON ---------------------------------------------


def real_config(**changes) -> PaddleOcrConfig:
    models = Path(
        os.environ.get("DATAPIPE_PADDLE_MODELS", Path(PADDLE_PYTHON).parents[1] / "models")
    )
    values = {
        "python": PADDLE_PYTHON,
        "det_model_dir": str(models / "PP-OCRv6_small_det"),
        "det_model_name": "PP-OCRv6_small_det",
        "rec_model_dir": str(models / "PP-OCRv6_small_rec"),
        "rec_model_name": "PP-OCRv6_small_rec",
        "enable_mkldnn": False,  # see scripts/make-paddle-env.sh
        "timeout_s": 60.0,
        **changes,
    }
    return PaddleOcrConfig(**values)


@pytest.fixture(scope="module")
def posters(tmp_path_factory):
    """A good zh and a good en poster, rendered and scored with RapidOCR, in one group."""
    folder = tmp_path_factory.mktemp("posters")
    no_faults = {"rate": 0, "pair_rate": 0}
    override = {"stages": {"ocr": {"threads": 2}, "render": {"faults": no_faults}}}
    loaded = load_recipe(write_recipe(folder, override))
    prompt = build_stage(PromptStage, loaded)
    prompt.setup()
    chosen = {}
    for slot in plan_groups(loaded):
        for candidate in prompt.process_batch([slot.to_group()])[0].candidates:
            chosen.setdefault(candidate.spec.language, candidate)
        if len(chosen) == 2:
            break
    group = dataclasses.replace(first_group(loaded), candidates=list(chosen.values()))
    for cls in (RenderStage, ImageStage, OcrStage):
        stage = build_stage(cls, loaded)
        stage.setup()
        (group,) = stage.process_batch([group])
    return folder, group


@needs_paddle
def test_real_paddleocr_reads_what_rapidocr_reads_and_scores_the_same(posters):
    folder, group = posters
    ocr = {"threads": 2, "backend": "paddleocr", "paddleocr": real_config().model_dump()}
    loaded = load_recipe(write_recipe(folder, {"stages": {"ocr": ocr}}, name="paddle.yaml"))
    stage = build_stage(OcrStage, loaded)
    stage.setup()
    try:
        assert stage.backend.version == "paddleocr-3.7.0"
        for rapid in group.candidates:
            paddle = dataclasses.replace(rapid, scores={}, details={})
            stage.process_batch([dataclasses.replace(group, candidates=[paddle])])
            assert "error" not in paddle.details["ocr"], paddle.details["ocr"]
            expected = [line.text for line in rapid.spec.copy]
            assert [row["read"] for row in paddle.details["ocr"]["lines"]] == expected
            ocr_scores = {k: v for k, v in rapid.scores.items() if k.startswith("ocr.")}
            assert {k: paddle.scores[k] for k in ocr_scores} == ocr_scores
            boxes = {
                row["expected"]: row["box"] for row in rapid.details["ocr"]["lines"] if row["found"]
            }
            for row in paddle.details["ocr"]["lines"]:
                assert np.abs(np.subtract(row["box"], boxes[row["expected"]])).max() <= 6, row
    finally:
        stage.teardown()


@needs_paddle
def test_a_real_worker_killed_mid_run_is_restarted_and_reads_on(posters):
    _, group = posters
    image = load_rgb(group.candidates[0].image)
    backend = PaddleOcrBackend(real_config(), threads=2)
    backend.load()
    try:
        before = [line.text for line in backend.read(image)]
        os.kill(backend.worker.proc.pid, signal.SIGKILL)
        after = [line.text for line in backend.read(image)]
        assert after == before and before
    finally:
        backend.close()


def test_quad_box_rounds_outward():
    assert quad_box([[0.2, 0.9], [10.1, 1], [10, 5.01], [0, 5]]) == (0, 0, 11, 6)
