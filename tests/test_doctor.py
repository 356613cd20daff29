"""`datapipe doctor` names what is missing and how to fix it; runs refuse to start without it."""

from __future__ import annotations

import pytest
from conftest import ROOT, write_recipe
from typer.testing import CliRunner

from datapipe.cli import app
from datapipe.doctor import Doctor
from datapipe.errors import DatapipeError
from datapipe.recipe import load_recipe
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
    assert "stages.clip.weights" in missing
    assert missing["env OPENAI_API_KEY"].fix.startswith("export OPENAI_API_KEY=")
    result = CliRunner().invoke(app, ["doctor", str(TRAIN), "--no-devices"])
    assert result.exit_code == 1 and "cannot run here" in result.output


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
