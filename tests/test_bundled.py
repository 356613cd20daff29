"""The offline recipes, libraries and prompts ship inside the wheel: a user who ran
`pip install datapipe` runs and scores with no source checkout."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import QUICKSTART, ROOT
from PIL import Image

from datapipe.bundled import FOLDERS, find_recipe, recipe_names
from datapipe.loading import load_recipe


def test_shipped_recipes_by_name():
    assert {"quickstart", "bench", "train"} <= set(recipe_names())
    assert find_recipe("quickstart") == QUICKSTART
    assert find_recipe("quickstart.yaml") == QUICKSTART
    assert find_recipe("no-such-recipe") == Path("no-such-recipe")
    assert load_recipe("quickstart").recipe_hash == load_recipe(QUICKSTART).recipe_hash


def test_setup_copies_what_the_package_names():
    tree = ast.parse((ROOT / "setup.py").read_text())
    assigned = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    }
    assert assigned["FOLDERS"] == FOLDERS
    manifest = (ROOT / "MANIFEST.in").read_text()
    assert all(f"graft {folder}" in manifest for folder in FOLDERS)


@pytest.mark.timeout(300)
def test_an_installed_wheel_scores_and_runs_without_the_checkout(tmp_path):
    wheels, site, elsewhere = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(wheels), str(ROOT)], check=True, cwd=tmp_path)
    wheel = next(wheels.glob("datapipe-*.whl"))
    install = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site)]
    subprocess.run([*install, str(wheel)], check=True)
    elsewhere.mkdir()
    Image.new("RGB", (256, 320), "white").save(elsewhere / "poster.png")
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    datapipe = [sys.executable, "-m", "datapipe.cli"]
    scored = subprocess.run(
        [*datapipe, "score", "poster.png", "--text", "SUMMER SALE", "--json"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    result = json.loads(scored.stdout)
    assert result["keep"] is False and "text_missing" in result["reasons"]
    validated = subprocess.run(
        [*datapipe, "validate", "quickstart"], cwd=elsewhere, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert validated.returncode == 0, validated.stderr
    assert str(site / "datapipe" / "bundled" / "pipelines" / "quickstart.yaml") in (
        validated.stdout.replace("\n", "")
    )
