"""The CLI: a run prints its summary; a mistake is one line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
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


def test_version():
    import datapipe

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"datapipe {datapipe.__version__}"


def flat(text: str) -> str:
    """Rich's help and error boxes wrap lines: the words, one space apart."""
    return " ".join(text.replace("│", " ").split())


def test_regen_names_its_choices(tmp_path):
    helped = flat(runner.invoke(app, ["regen", "--help"]).output)
    assert "extend, fill, rescale, identity, layout, style" in helped
    assert "train or bench" in helped
    wrong = runner.invoke(app, ["regen", "--out", str(tmp_path), "--task", "fil"])
    assert wrong.exit_code == 2 and "'fil' is not one of extend, fill" in flat(wrong.output)


def test_a_misspelt_key_gets_a_suggestion(tmp_path):
    recipe = write_recipe(tmp_path, {"blok_size": 4, "stages": {"ocr": {"treads": 2}}})
    result = runner.invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 2
    assert "blok_size: unknown key (did you mean 'block_size'?" in result.output
    assert "stages.ocr.treads: unknown key (did you mean 'threads'?" in result.output
    assert "datapipe recipe-keys" in result.output
    keys = runner.invoke(app, ["recipe-keys", "--markdown"])
    assert keys.exit_code == 0
    assert "| `block_size` | int | 16 |" in keys.output
    assert "`stages.ocr.threads`" in keys.output and "`thresholds.NAME.min`" in keys.output


@pytest.mark.parametrize("case", ["file", "foreign", "nested"])
def test_out_is_checked_before_anything_is_written(tmp_path, quickstart_run, case):
    recipe = write_recipe(tmp_path)
    if case == "file":
        out = tmp_path / "taken"
        out.write_text("mine")
        why = "is a file, not a folder"
    elif case == "foreign":
        out = tmp_path / "photos"
        out.mkdir()
        (out / "holiday.jpg").write_bytes(b"mine")
        why = "is not empty and holds no datapipe run"
    else:
        out = quickstart_run[0] / "datasets"
        why = "is inside the datapipe output"
    before = sorted(p.name for p in out.parent.iterdir())
    result = runner.invoke(app, ["run", str(recipe), "--out", str(out), "--limit", "1", "-q"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and why in lines[0] and "Traceback" not in result.output
    assert sorted(p.name for p in out.parent.iterdir()) == before
    if case == "foreign":
        assert sorted(p.name for p in out.iterdir()) == ["holiday.jpg"]


@pytest.mark.timeout(600)
def test_ray_run_of_the_shipped_quickstart_on_this_machine(tmp_path):
    """The README's `--ray` command with nothing edited: unpinned pools are fitted to the
    cores there are (2 in CI) and said so; Ray's own output goes to OUT/ray.log."""
    out = tmp_path / "out"
    command = [sys.executable, "-m", "datapipe.cli", "run", "quickstart", "--out", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "disabled"
    result = subprocess.run(
        [*command, "--ray", "--limit", "6"], capture_output=True, text=True, env=env, timeout=540
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = result.stdout + result.stderr
    assert "pairs by task" in printed
    assert "Running Dataset" not in printed and "MapBatches" not in printed
    assert (out / "ray.log").stat().st_size > 0
    log = (out / "datapipe.log").read_text()
    if (os.cpu_count() or 1) < 4:
        assert "each gets a share" in printed and "each gets a share" in log
    assert verify_clean(out)


def verify_clean(out) -> bool:
    from datapipe.verify import verify

    return all(not check.faults for check in verify(out))
