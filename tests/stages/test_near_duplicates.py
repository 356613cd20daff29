"""Near-duplicate renders: the index finds what a brute-force scan finds; the stage keeps
the first render and rejects later ones of other groups, with their own reason."""

from __future__ import annotations

import random

import pytest
from conftest import write_recipe

from datapipe.loading import load_recipe
from datapipe.records import Candidate, Group, PromptSpec, Verdict
from datapipe.stages.near_duplicates import (
    REASON,
    REASON_TRAIN,
    NearDuplicateStage,
    PhashIndex,
)
from datapipe.stages.registry import near_duplicates


@pytest.mark.parametrize("distance", [0, 3, 6, 10])
def test_index_agrees_with_a_brute_force_scan(distance):
    rng = random.Random(distance)
    base = [rng.getrandbits(64) for _ in range(40)]
    values = []
    for _ in range(600):  # many near copies of a few bases, and random ones
        value = rng.choice(base) if rng.random() < 0.7 else rng.getrandbits(64)
        for bit in rng.sample(range(64), rng.randint(0, distance + 2)):
            value ^= 1 << bit
        values.append(value)
    index = PhashIndex(distance)
    found = 0
    for i, value in enumerate(values):
        group = f"g{i % 97}"
        expected = None
        for other, key, other_group in index.entries:
            if other_group != group and (value ^ other).bit_count() <= distance:
                expected = (key, (value ^ other).bit_count())
                break
        assert index.find(value, group, distance) == expected, i
        found += expected is not None
        index.add(value, f"k{i}", group)
    assert found > 50  # the scan is not vacuous


def candidate(key: str, phash: int) -> Candidate:
    text = dict.fromkeys(
        ("group_id", "entity_id", "entity_name", "entity_description", "entity_shape"), ""
    )
    text |= dict.fromkeys(("entity_color", "style_id", "style_name", "layout_id"), "")
    spec = PromptSpec(
        spec_id=key,
        group_kind="single",
        member=0,
        language="en",
        theme="food",
        aspect_ratio="1:1",
        width=8,
        height=8,
        copy=[],
        prompt="",
        negative_prompt="",
        seed=0,
        **text,
    )
    return Candidate(
        spec=spec, details={"phash": f"{phash:016x}"}, verdict=Verdict(keep=True, reasons=[])
    )


def group(gid: str, *candidates: Candidate, split: str = "train") -> Group:
    return Group(gid, "single", 0, 0, "en", "food", split=split, candidates=list(candidates))


def test_stage_keeps_the_first_and_rejects_repeats_of_other_groups(tmp_path):
    loaded = load_recipe(write_recipe(tmp_path, {"near_duplicates": {"max_distance": 4}}))
    seen = near_duplicates(loaded)
    stage = NearDuplicateStage(seen, None, "train")
    first = candidate("a-0", 0xF0F0F0F0F0F0F0F0)
    twin_same_group = candidate("a-1", 0xF0F0F0F0F0F0F0F1)  # a rescale twin: allowed
    repeat = candidate("b-0", 0xF0F0F0F0F0F0F0F3)  # 2 bits from a-0
    far = candidate("c-0", 0x0F0F0F0F0F0F0F0F)
    stage.process_batch([group("a", first, twin_same_group), group("b", repeat), group("c", far)])
    assert first.kept and twin_same_group.kept and far.kept
    assert not repeat.kept and repeat.verdict.reasons == [REASON]
    assert (
        "a-0" in repeat.verdict.details[REASON] and "distance 2" in repeat.verdict.details[REASON]
    )


def test_bench_renders_are_checked_against_train_too(tmp_path):
    loaded = load_recipe(write_recipe(tmp_path, {"near_duplicates": {"max_distance": 2}}))
    seen = near_duplicates(loaded)
    NearDuplicateStage(seen, None, "train").process_batch([group("t", candidate("t-0", 0xAAAA))])
    bench = NearDuplicateStage(seen, None, "bench")
    copy_of_train = candidate("b-0", 0xAAAB)
    new = candidate("b2-0", 0x5555_0000)
    bench.process_batch([group("b", copy_of_train, split="bench"), group("b2", new, split="bench")])
    assert copy_of_train.verdict.reasons == [REASON_TRAIN] and new.kept
    # a later train render is never compared with the bench (train comes first)
    assert seen.check("train", 0x5555_0000, "x") is None


def test_remembered_ledger_rows_count_like_committed_renders(tmp_path):
    loaded = load_recipe(write_recipe(tmp_path, {"near_duplicates": {"max_distance": 3}}))
    seen = near_duplicates(loaded)
    seen.remember("train", [["t-0", "t", f"{0x1234:016x}"]])
    assert seen.check("train", 0x1235, "other") == (REASON, "pHash distance 1 <= 3 to t-0 (train)")
    assert seen.check("train", 0x1235, "t") is None
