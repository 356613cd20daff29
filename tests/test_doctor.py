"""`datapipe doctor` names what is missing and how to fix it; runs refuse to start without it."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import ROOT, write_recipe
from typer.testing import CliRunner

from datapipe.backends.ocr_paddle import PADDLE_PINS
from datapipe.cli import app
from datapipe.doctor import Doctor
from datapipe.errors import DatapipeError
from datapipe.fonts import font_path
from datapipe.loading import load_recipe
from datapipe.runner.local import run_local

TRAIN = ROOT / "pipelines" / "train.yaml"


def test_quickstart_is_ready_here(quickstart):
    findings = Doctor(quickstart).check()
    assert findings and all(f.ok for f in findings)
    result = CliRunner().invoke(app, ["doctor", str(ROOT / "pipelines" / "quickstart.yaml")])
    assert result.exit_code == 0 and "ready" in result.output


def test_train_recipe_validates_and_names_every_missing_weight(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    loaded = load_recipe(TRAIN)
    missing = {f.what: f for f in Doctor(loaded, devices=False).check() if not f.ok}
    assert "stages.render.qwen_image.model" in missing
    assert "/models/Qwen-Image" in missing["stages.render.qwen_image.model"].detail
    assert "never downloaded" in missing["stages.render.qwen_image.model"].fix
    assert "stages.subject.sam2.checkpoint" in missing
    clip = "/models/open_clip/xlm-roberta-large-ViT-H-14"
    for name in ("open_clip_config.json", "tokenizer_config.json", "config.json"):
        assert f"{clip}/{name}" in missing  # config and tokenizer, not only the weights
    assert f"{clip}/open_clip_model.safetensors" in next(
        w for w in missing if clip in w and "safetensors" in w
    )
    assert "sentencepiece.bpe.model" in next(
        w for w in missing if "tokenizer.json" in w and clip in w
    )
    assert "QuickGELU" in missing[f"{clip}/open_clip_config.json"].detail
    assert (
        "/models/grounding-dino-tiny/tokenizer.json | /models/grounding-dino-tiny/vocab.txt"
        in missing
    )
    assert "/models/Qwen-Image/text_encoder/config.json" in missing
    assert missing["env OPENAI_API_KEY"].fix.startswith("export OPENAI_API_KEY=")
    result = CliRunner().invoke(app, ["doctor", str(TRAIN), "--no-devices"])
    assert result.exit_code == 1 and "cannot run here" in result.output


def test_a_glyph_shape_rule_needs_the_simplified_forms(quickstart, monkeypatch):
    """train.yaml's text_shape compares zh glyphs with both regional forms of the font,
    which only Pillow's shaping layout reaches; the quickstart takes no shape rule."""
    loaded = load_recipe(TRAIN)
    ready = {f.what: f for f in Doctor(loaded, devices=False).check()}
    assert ready["regional glyph forms"].ok
    monkeypatch.setattr("datapipe.fonts.shaping", lambda: False)
    missing = {f.what: f for f in Doctor(loaded, devices=False).check() if not f.ok}
    assert "libfribidi0" in missing["regional glyph forms"].fix
    assert "regional glyph forms" not in {f.what for f in Doctor(quickstart).check()}


def test_a_glyph_shape_rule_needs_its_reference_fonts(monkeypatch):
    """train.yaml's shape rules compare glyphs with Noto Sans CJK and Source Sans Pro,
    whatever renders its posters: a missing font wheel is a finding of the ocr stage,
    with its pip fix."""
    loaded = load_recipe(TRAIN)
    ready = {f.what: f for f in Doctor(loaded, devices=False).check() if f.stage == "ocr"}
    assert ready["font source-sans"].ok and ready["font bold"].ok
    monkeypatch.setattr("datapipe.fonts.resources", SimpleNamespace(files=missing_package))
    font_path.cache_clear()
    try:
        missing = {f.what: f for f in Doctor(loaded, devices=False).check() if not f.ok}
    finally:
        font_path.cache_clear()
    assert missing["font source-sans"].stage == "ocr"
    assert "pip install font-source-sans-pro" in missing["font source-sans"].fix


def missing_package(package: str):
    raise ModuleNotFoundError(f"No module named {package!r}")


def test_a_run_refuses_to_start_without_its_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    override = {
        "stages": {
            "render": {"backend": "qwen_image", "qwen_image": {"model": str(tmp_path / "nope")}}
        }
    }
    loaded = load_recipe(write_recipe(tmp_path, override))
    with pytest.raises(DatapipeError) as info:
        run_local(loaded, tmp_path / "out", limit=1)
    assert str(tmp_path / "nope") in str(info.value)
    assert "sk-test" not in str(info.value)
    assert not (tmp_path / "out").exists(), "nothing may be written before the checks pass"


PADDLE_PYTHON = os.environ.get("DATAPIPE_PADDLE_PYTHON")


def paddle_recipe(tmp_path, **changes):
    section = {
        "python": str(tmp_path / "paddle-env" / "bin" / "python"),
        "det_model_dir": str(tmp_path / "det"),
        "det_model_name": "PP-OCRv6_small_det",
        "rec_model_dir": str(tmp_path / "rec"),
        "rec_model_name": "PP-OCRv6_small_rec",
        **changes,
    }
    override = {"stages": {"ocr": {"backend": "paddleocr", "paddleocr": section}}}
    return load_recipe(write_recipe(tmp_path, override))


def paddle_model(folder, name):
    folder.mkdir(parents=True)
    (folder / "inference.yml").write_text(yaml.safe_dump({"Global": {"model_name": name}}))
    return str(folder)


def ocr_findings(loaded):
    return {f.what: f for f in Doctor(loaded, devices=False).check() if f.stage == "ocr"}


def test_paddleocr_needs_its_python_and_model_dirs_not_rapidocr(tmp_path):
    findings = ocr_findings(paddle_recipe(tmp_path))
    python = findings["stages.ocr.paddleocr.python"]
    assert not python.ok and "paddle-env/bin/python: does not exist" in python.detail
    assert "python -m venv /opt/paddle-ocr" in python.fix
    for kind in ("det", "rec"):
        model = findings[f"stages.ocr.paddleocr.{kind}_model_dir"]
        assert not model.ok and str(tmp_path / kind) in model.detail
        assert "never downloaded" in model.fix
    assert "package rapidocr" not in findings, "the main env's OCR packages are not needed"


@pytest.mark.skipif(importlib.util.find_spec("paddleocr") is not None, reason="paddleocr here")
def test_paddleocr_is_imported_by_the_paddle_python_and_model_names_are_checked(tmp_path):
    loaded = paddle_recipe(
        tmp_path,
        python=sys.executable,  # this env: a real python without paddleocr
        det_model_dir=paddle_model(tmp_path / "det", "PP-OCRv6_small_det"),
        rec_model_dir=paddle_model(tmp_path / "rec", "PP-OCRv5_server_rec"),
    )
    findings = ocr_findings(loaded)
    assert findings["stages.ocr.paddleocr.python"].ok
    package = findings["package paddleocr (paddle env)"]
    assert not package.ok and "No module named 'paddleocr'" in package.detail
    assert package.fix == f"{sys.executable} -m pip install {PADDLE_PINS}"
    assert findings["stages.ocr.paddleocr.det_model_dir"].ok
    rec = findings["stages.ocr.paddleocr.rec_model_dir"]
    assert not rec.ok and "holds PP-OCRv5_server_rec" in rec.detail
    assert "rec_model_name: PP-OCRv5_server_rec" in rec.fix


def test_a_paddleocr_run_refuses_to_start_without_its_model_dirs(tmp_path):
    loaded = paddle_recipe(tmp_path, python=sys.executable)
    with pytest.raises(DatapipeError) as info:
        run_local(loaded, tmp_path / "out", limit=1)
    assert f"stages.ocr.paddleocr.det_model_dir = {tmp_path / 'det'}: no dir there" in str(
        info.value
    )
    assert not (tmp_path / "out").exists(), "nothing may be rendered before the checks pass"


@pytest.mark.skipif(
    not PADDLE_PYTHON, reason="set DATAPIPE_PADDLE_PYTHON (scripts/make-paddle-env.sh)"
)
def test_the_paddle_env_from_the_script_passes(tmp_path):
    models = Path(PADDLE_PYTHON).parents[1] / "models"
    loaded = paddle_recipe(
        tmp_path,
        python=PADDLE_PYTHON,
        det_model_dir=str(models / "PP-OCRv6_small_det"),
        rec_model_dir=str(models / "PP-OCRv6_small_rec"),
    )
    findings = ocr_findings(loaded)
    assert findings and all(f.ok for f in findings.values()), findings


def test_fixes_are_printed_whole_at_80_columns(monkeypatch):
    """Rich read `datapipe[api]` as markup and a table cut every fix at 80 columns."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name.split(".")[0] in {"openai", "diffusers"} else real(name, *a),
    )
    findings = [f for f in Doctor(load_recipe(TRAIN), devices=False).check() if not f.ok]
    fixes = {f.fix for f in findings}
    assert any("'datapipe[api]'" in fix for fix in fixes)
    assert any("'datapipe[models]'" in fix for fix in fixes)
    result = CliRunner().invoke(app, ["doctor", str(TRAIN), "--no-devices"], terminal_width=80)
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    for finding in findings:
        assert " ".join(f"fix: {finding.fix}".split()) in flat, finding.fix
        assert " ".join(finding.detail.split()) in flat
    assert "no any there" not in flat


def clip_recipe(tmp_path, folder):
    override = {"stages": {"clip": {"enabled": True, "model": f"local-dir:{folder}"}}}
    return load_recipe(write_recipe(tmp_path, override))


def test_doctor_counts_the_clip_tokenizers_unknown_chinese(tmp_path):
    """With the folder on this node, the configured tokenizer itself is checked against
    every Chinese character of the libraries."""
    pytest.importorskip("transformers")
    from backends.tiny_vision import bert_char_tokenizer, xlmr_style_tokenizer

    good, poor = tmp_path / "xlmr", tmp_path / "english"
    xlmr_style_tokenizer(good)
    bert_char_tokenizer().save_pretrained(poor)  # letters and digits only: zh is [UNK]
    found = {f.what: f for f in Doctor(clip_recipe(tmp_path, good), devices=False).check()}
    coverage = found["tokenizer coverage"]
    assert coverage.ok and "(100.0%)" in coverage.detail
    assert not found[f"{good}/open_clip_config.json"].ok  # the rest of the layout is named
    found = {f.what: f for f in Doctor(clip_recipe(tmp_path, poor), devices=False).check()}
    coverage = found["tokenizer coverage"]
    assert not coverage.ok and "(0.0%)" in coverage.detail and "multilingual" in coverage.fix


@pytest.mark.parametrize("model", ["ViT-L-14", "ViT-B-16-SigLIP"])
def test_an_english_only_clip_is_refused_for_zh_posters(tmp_path, model):
    pytest.importorskip("open_clip")
    override = {"stages": {"clip": {"enabled": True, "model": model}}}
    loaded = load_recipe(write_recipe(tmp_path, override))
    assert loaded.recipe.languages["zh"] > 0
    found = {f.what: f for f in Doctor(loaded, devices=False).check()}
    assert not found["reads Chinese"].ok and "multilingual" in found["reads Chinese"].fix
    english = tmp_path / "en"
    english.mkdir()
    path = write_recipe(english, override)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["languages"] = {"en": 1}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    found = {f.what for f in Doctor(load_recipe(path), devices=False).check()}
    assert "reads Chinese" not in found  # English posters only: an English CLIP is fine


def test_multilingual_clips_pass_the_language_check(tmp_path):
    pytest.importorskip("open_clip")
    for model in ("xlm-roberta-large-ViT-H-14", "ViT-B-16-SigLIP2", "ViT-B-16-SigLIP-i18n-256"):
        override = {"stages": {"clip": {"enabled": True, "model": model}}}
        loaded = load_recipe(write_recipe(tmp_path, override))
        assert "reads Chinese" not in {f.what for f in Doctor(loaded, devices=False).check()}


def test_doctor_states_what_the_execution_section_needs_of_the_cluster(tmp_path, monkeypatch):
    """GPUs, CPUs per pool, pinned vs sized to the cluster, memory where declared: the same
    numbers the Ray runner's fitting and capacity check apply."""
    from datapipe.runner.pools import ClusterNeeds, capacity_problems, fit_pools

    train = ClusterNeeds.of(load_recipe(TRAIN))
    assert train.gpus == 8 and train.largest_gpu_share == 0.8
    assert all(p.pinned for p in train.pools) and train.min_cpus == train.full_cpus == 44.5
    enough = {"CPU": train.full_cpus, "GPU": train.gpus}
    assert capacity_problems(enough, train.pools) == []
    assert capacity_problems(enough | {"GPU": 7}, train.pools)
    assert capacity_problems(enough | {"CPU": 44}, train.pools)  # pinned: never shrunk

    execution = {"stages": {"ocr": {"cpus": 2, "workers": 2}, "subject": {"workers": 2}}}
    execution["stages"]["subject"]["resources"] = {"memory": 4 * 2**30}
    recipe = write_recipe(tmp_path, {"execution": execution})
    needs = ClusterNeeds.of(load_recipe(recipe))
    pinned = {p.stage.name for p in needs.pools if p.pinned}
    assert pinned == {"ocr"} and needs.pinned_cpus == 4 and needs.gpus == 0
    assert needs.resources() == {"memory": 8 * 2**30}
    smallest = {"CPU": needs.min_cpus, "memory": 8 * 2**30}
    fitted, note = fit_pools(smallest, needs.pools)
    assert note and capacity_problems(smallest, fitted) == []
    fitted, _ = fit_pools(smallest | {"CPU": needs.min_cpus - 0.1}, needs.pools)
    assert capacity_problems(smallest | {"CPU": needs.min_cpus - 0.1}, fitted)

    monkeypatch.setenv("COLUMNS", "160")  # one table row a line
    result = CliRunner().invoke(app, ["doctor", str(recipe)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "execution: what the Ray cluster must offer" in text
    assert "│ ocr │ 2 │ 2 │ 0 │ │ pinned │" in text
    assert "│ render │ 1 │ 1 │ 0 │ │ sized to the cluster │" in text
    assert "GPUs: none" in text
    assert "4 pinned by execution.stages (ocr)" in text
    assert f"so the run starts on as few as {needs.min_cpus:g}" in text
    assert "memory: 8 GiB reserved" in text
