"""The dataset card: Hub YAML header, counts equal to the manifests, Croissant that
mlcroissant validates offline."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest
import yaml

from datapipe.io.card import reject_scope, size_category


@pytest.fixture(scope="module")
def out(quickstart_run):
    return quickstart_run[0]


def header(out) -> dict:
    text = (out / "datasets" / "README.md").read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_the_header_names_a_config_per_task_with_its_splits(out, quickstart):
    head = header(out)
    tasks = sorted(p.name for p in (out / "datasets" / "train").iterdir() if p.is_dir())
    assert [c["config_name"] for c in head["configs"]] == tasks
    for config in head["configs"]:
        assert config["data_files"] == [
            {"split": "train", "path": f"train/{config['config_name']}/*.tar"}
        ]
    assert head["language"] == sorted(quickstart.recipe.languages)
    assert head["license"] and head["task_categories"]
    assert head["size_categories"] == ["n<1K"]


def test_the_card_counts_equal_the_manifests(out):
    manifests = Counter()
    for path in (out / "datasets").glob("*/*/__manifests__/*.parquet"):
        for row in pq.read_table(path, columns=["split", "task", "language", "theme"]).to_pylist():
            manifests[(row["split"], row["task"], row["language"], row["theme"])] += 1
    card = Counter()
    for line in (out / "datasets" / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[0] in ("train", "bench"):
            card[tuple(cells[:4])] = int(cells[4])
    assert card == manifests and sum(card.values()) > 0
    rejects = pq.read_table(out / "rejects.parquet", columns=["stage", "task", "reason"])
    text = (out / "datasets" / "README.md").read_text()
    rows = Counter((r["reason"], reject_scope(r["stage"], r["task"])) for r in rejects.to_pylist())
    assert rows
    for (reason, scope), n in rows.items():
        assert f"| {reason} | {scope} | {n} |" in text
    run = json.loads((out / "run.json").read_text())
    assert run["recipe_hash"] in text and "rapidocr" in text


def test_mlcroissant_validates_croissant_json(out):
    mlc = pytest.importorskip("mlcroissant")
    dataset = mlc.Dataset(jsonld=str(out / "datasets" / "croissant.json"))
    assert not dataset.metadata.issues.errors
    names = {f.name for f in dataset.metadata.distribution}
    assert "train-fill" in names


def test_size_categories():
    assert [size_category(n) for n in (0, 999, 1000, 250_000)] == [
        "n<1K",
        "n<1K",
        "1K<n<10K",
        "100K<n<1M",
    ]
