"""The task registry: one row per task, and pair rules that the builders check and the
inspection draws from the same list."""

from __future__ import annotations

from datapipe.inspect.rules import pair_thresholds
from datapipe.recipe import ALL_TASKS, TasksConfig
from datapipe.tasks.registry import TASKS


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
