"""Every pair invariant, checked on every sample the quickstart wrote."""

from __future__ import annotations

import re

import numpy as np
import pytest
from shards import array, meta, samples

from datapipe.images import load_mask
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.truth_store import TruthStore
from datapipe.recipe import ALL_TASKS
from datapipe.stages.filter import evaluate

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def out(quickstart_run):
    return quickstart_run[0]


@pytest.fixture(scope="module")
def candidates(out):
    store = CandidateStore(out)
    found = {}
    for parquet in sorted(store.root.glob("cand-*.parquet")):
        block = int(parquet.stem.split("-")[1])
        for group in store.load(block):
            for candidate in group.candidates:
                found[candidate.key] = candidate
    return found


def test_quickstart_volume(quickstart_run):
    _, summary = quickstart_run
    by_task = summary.pairs_by_task()
    assert sum(by_task.values()) >= 500, by_task
    assert set(by_task) == set(ALL_TASKS)
    assert all(n >= 40 for n in by_task.values()), by_task
    for task in ALL_TASKS:
        assert summary.pairs[(task, "zh")] > 0 and summary.pairs[(task, "en")] > 0, task


def test_every_sample_is_complete_and_language_matched(out):
    n = 0
    for key, files in samples(out):
        n += 1
        info = meta(files)
        assert info["key"] == key and "." not in key
        assert {"source.png", "target.png", "txt", "json"} <= set(files)
        instruction = files["txt"].decode()
        assert instruction == info["instruction"] and instruction.strip()
        assert "{" not in instruction, instruction
        if info["language"] == "zh":
            assert CJK.search(instruction), instruction
        else:
            assert not CJK.search(instruction), instruction
        assert info["lineage"]["target"] and info["lineage"]["recipe_hash"]
    assert n > 0


def test_fill_source_equals_target_outside_the_mask(out, quickstart):
    blank = quickstart.recipe.tasks.fill.blank_value
    kinds = set()
    for key, files in samples(out, "fill"):
        source, target, mask = (
            array(files["source.png"]),
            array(files["target.png"]),
            array(files["mask.png"]),
        )
        inside = mask > 127
        assert set(np.unique(mask)) <= {0, 255}
        assert inside.any(), key
        assert np.array_equal(source[~inside], target[~inside]), key
        assert (source[inside] == blank).all(), key
        kinds.add(meta(files)["params"]["mask_kind"])
    assert kinds == {"subject", "text", "freeform"}


def test_identity_cutout_comes_from_the_targets_own_mask(out, candidates):
    for key, files in samples(out, "identity"):
        info = meta(files)
        source, target, cutout_mask = (
            array(files["source.png"]),
            array(files["target.png"]),
            array(files["mask.png"]) > 127,
        )
        x0, y0, x1, y1 = info["params"]["subject_box"]
        pad = info["params"]["padding"]
        own = candidates[info["lineage"]["target"]]
        subject = load_mask(own.subject_mask)[y0:y1, x0:x1]
        assert np.array_equal(cutout_mask[pad : pad + y1 - y0, pad : pad + x1 - x0], subject), key
        local = source[pad : pad + y1 - y0, pad : pad + x1 - x0]
        assert np.array_equal(local[subject], target[y0:y1, x0:x1][subject]), key
        assert (source[~cutout_mask] == 255).all(), key


def test_extend_crop_holds_the_subject_within_the_area_bounds(out, quickstart):
    lo, hi = quickstart.recipe.tasks.extend.area
    modes = set()
    for key, files in samples(out, "extend"):
        info = meta(files)
        x0, y0, x1, y1 = info["params"]["crop_box"]
        source, target = array(files["source.png"]), array(files["target.png"])
        h, w = target.shape[:2]
        assert lo - 0.01 <= (x1 - x0) * (y1 - y0) / (w * h) <= hi + 0.01, key
        crop = target[y0:y1, x0:x1]
        if info["params"]["mode"] == "canvas":
            assert source.shape == target.shape
            assert np.array_equal(source[y0:y1, x0:x1], crop), key
            outside = np.ones(source.shape[:2], dtype=bool)
            outside[y0:y1, x0:x1] = False
            assert (source[outside] == 255).all(), key
        else:
            assert np.array_equal(source, crop), key
        modes.add(info["params"]["mode"])
    assert modes == {"canvas", "crop"}


def test_extend_crop_contains_the_subject_box(out, candidates):
    for key, files in samples(out, "extend"):
        info = meta(files)
        x0, y0, x1, y1 = info["params"]["crop_box"]
        bx0, by0, bx1, by1 = candidates[info["lineage"]["target"]].details["subject"]["box"]
        assert x0 <= bx0 and y0 <= by0 and bx1 <= x1 and by1 <= y1, key


def test_rescale_pairs_share_copy_and_differ_in_ratio(out, candidates):
    for key, files in samples(out, "rescale"):
        info = meta(files)
        target = candidates[info["lineage"]["target"]]
        (source_key,) = info["lineage"]["sources"]
        source = candidates[source_key]
        assert source.spec.group_id == target.spec.group_id, key
        assert source.spec.copy == target.spec.copy
        assert source.spec.aspect_ratio != target.spec.aspect_ratio
        assert array(files["source.png"]).shape[:2] == (source.spec.height, source.spec.width)
        assert info["scores"]["pair"]["pair.text_match"] >= 0.9


@pytest.mark.parametrize("task", ["layout", "style"])
def test_reference_pairs_come_from_one_group_with_another_entity(out, candidates, task):
    n = 0
    for key, files in samples(out, task):
        info = meta(files)
        target = candidates[info["lineage"]["target"]]
        (reference_key,) = info["lineage"]["sources"]
        reference = candidates[reference_key]
        assert reference.spec.group_id == target.spec.group_id and reference.key != target.key, key
        assert reference.spec.entity_id != target.spec.entity_id, key
        shared = "layout_id" if task == "layout" else "style_id"
        assert getattr(reference.spec, shared) == getattr(target.spec, shared), key
        assert files["source.png"] == reference.image, key
        n += 1
    assert n > 0


def test_targets_and_sources_are_kept_renders(out, candidates, quickstart):
    rules = quickstart.recipe.thresholds
    faults = TruthStore(out).all_faults()  # grading only: did a broken render get through?
    for key, files in samples(out):
        lineage = meta(files)["lineage"]
        target = candidates[lineage["target"]]
        assert files["target.png"] == target.image, key
        for candidate_key in (lineage["target"], *lineage["sources"]):
            candidate = candidates[candidate_key]
            assert evaluate(candidate.scores, rules, image_failed=False).keep, key
            # malformed glyphs are the verifier's known frontier (benchmarks/fidelity.py,
            # train.yaml: recall 0.75 zh, 0.83 en; the quickstart takes no shape rule):
            # one the recogniser reads through can get in
            assert faults[candidate_key] in ("good", "malformed_glyph"), key
