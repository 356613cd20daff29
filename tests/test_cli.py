"""The CLI: a run prints its summary; a mistake is one line and exit status 2."""

from __future__ import annotations

from conftest import write_recipe
from typer.testing import CliRunner

from datapipe.cli import app

runner = CliRunner()


def test_run_prints_the_summary(tmp_path):
    recipe = write_recipe(tmp_path)
    result = runner.invoke(
        app, ["run", str(recipe), "--out", str(tmp_path / "out"), "--limit", "3", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert "pairs by task" in result.output and "identity" in result.output
    assert "seconds per stage" in result.output
    assert (tmp_path / "out" / "run.json").is_file()


def test_bad_recipe_is_one_line_without_traceback(tmp_path):
    recipe = write_recipe(tmp_path, {"groups": {"single": -1}})
    result = runner.invoke(app, ["run", str(recipe), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "groups.single" in lines[0]
    assert not (tmp_path / "out").exists()


def test_validate(tmp_path):
    result = runner.invoke(app, ["validate", str(write_recipe(tmp_path))])
    assert result.exit_code == 0 and result.output.startswith("ok:")
