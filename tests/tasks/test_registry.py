"""The task registry: one row per task, and pair rules that the task stage checks and
the inspection draws from the same list."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from datapipe.inspect.rules import pair_thresholds
from datapipe.recipe import ALL_TASKS, TasksConfig
from datapipe.records import PairReject
from datapipe.tasks.registry import TASKS
from datapipe.verdicts import first_broken


def test_a_row_per_task_and_every_rule_names_a_real_setting():
    assert tuple(TASKS) == ALL_TASKS
    defaults = TasksConfig()
    for name, row in TASKS.items():
        settings = getattr(defaults, name).model_dump()
        for rule in row.pair_rules:
            assert (rule.setting is None) != (rule.value is None), rule
            if rule.setting is not None:
                assert rule.setting in settings, (name, rule.setting)
    assert {n for n, r in TASKS.items() if r.per == "pair"} == {"rescale", "layout", "style"}
    assert all((r.measure is not None) == (r.per == "pair") for r in TASKS.values())


def test_inspection_draws_every_pair_rule_the_builder_checks():
    """The clip floor and ceiling were missing from inspection's own copy of the rules."""
    recipe = {
        "tasks": {
            "rescale": {
                "min_text_match": 0.9,
                "min_color_similarity": 0.6,
                "min_clip_similarity": 0.8,
                "min_subject_similarity": 0.7,
            },
            "style": {
                "min_color_similarity": 0.5,
                "min_phash_distance": 6,
                "max_clip_similarity": 0.95,
            },
        }
    }
    rescale = {(t.reason, t.score, t.kind, t.value) for t in pair_thresholds(recipe, "rescale")}
    assert ("rescale_clip_mismatch", "pair.clip_similarity", "min", 0.8) in rescale
    assert ("rescale_subject_mismatch", "pair.subject_similarity", "min", 0.7) in rescale
    style = [(t.reason, t.kind, t.value) for t in pair_thresholds(recipe, "style")]
    assert style == [
        ("style_color_mismatch", "min", 0.5),
        ("style_near_duplicate", "min", 6.0),
        ("style_near_duplicate", "max", 0.95),
    ]
    recipe["tasks"]["style"]["max_clip_similarity"] = None  # unset: neither checked nor drawn
    assert len(pair_thresholds(recipe, "style")) == 2


def _fake(key: str) -> Any:
    return SimpleNamespace(key=key)


def test_the_task_stage_rejects_a_pair_for_the_first_rule_it_breaks_under_its_measure():
    """The subject bound is the measure's: a CLIP score meets the CLIP bound, a descriptor
    score the descriptor's; a pair that promises one subject and shows none is refused."""
    row, config = TASKS["rescale"], TasksConfig().rescale
    scores = {"pair.text_match": 1.0, "pair.color_similarity": 0.1}
    # above the CLIP floor though under the descriptor's: only the colour breaks
    scores["pair.subject_clip_similarity"] = config.min_subject_clip_similarity + 0.01
    reason, detail = first_broken(row.pair_rules, config.model_dump(), scores)
    assert reason == "rescale_color_mismatch"
    assert "other colours" in detail
    scores["pair.subject_clip_similarity"] = config.min_subject_clip_similarity - 0.01
    assert first_broken(row.pair_rules, config.model_dump(), scores)[0] == (
        "rescale_subject_mismatch"
    )
    no_subject = {"pair.text_match": 1.0, "pair.subject_similarity": None}
    reason, detail = first_broken(row.pair_rules, config.model_dump(), no_subject)
    assert (reason, detail) == (
        "rescale_subject_mismatch",
        "pair.subject_similarity could not be measured",
    )
    # style: no subject mask means nothing to compare, which is no reason to refuse
    style = TASKS["style"]
    fine = {"pair.color_similarity": 1.0, "pair.phash_distance": 40.0,
            "pair.subject_similarity": None}  # fmt: skip
    assert first_broken(style.pair_rules, TasksConfig().style.model_dump(), fine) is None


def test_a_pair_that_breaks_a_rule_is_recorded_with_every_score_and_no_sample():
    row = TASKS["layout"]
    config = TasksConfig().layout
    measured = {"pair.layout_match": 0.2, "pair.subject_similarity": 0.1}
    fake = replace(row, measure=lambda *_: dict(measured), builder=_never)
    made = fake.pair(None, config, None, _fake("r"), _fake("t"))
    assert isinstance(made, PairReject)
    assert (made.task, made.candidate_key, made.reason) == ("layout", "t", "layout_mismatch")
    assert made.scores == measured
    assert made.detail.startswith(f"pair.layout_match=0.2 < min {config.min_layout_match:g}")


def _never(*_: Any) -> Any:
    raise AssertionError("a pair that breaks a rule must not be built")
