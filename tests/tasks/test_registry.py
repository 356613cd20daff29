"""The task registry: one row per task, and pair rules that the builders check and the
inspection draws from the same list."""

from __future__ import annotations

from types import SimpleNamespace

from datapipe.inspect.rules import pair_thresholds
from datapipe.recipe import ALL_TASKS, TasksConfig
from datapipe.records import Candidate
from datapipe.tasks.common import TaskContext
from datapipe.tasks.registry import PAIR_RULES, TASKS


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
    assert ("rescale_subject_mismatch", "pair.same_subject", "min", 1.0) in rescale
    style = [(t.reason, t.kind, t.value) for t in pair_thresholds(recipe, "style")]
    assert style == [
        ("style_color_mismatch", "min", 0.5),
        ("style_near_duplicate", "min", 6.0),
        ("style_near_duplicate", "max", 0.95),
    ]
    recipe["tasks"]["style"]["max_clip_similarity"] = None  # unset: neither checked nor drawn
    assert len(pair_thresholds(recipe, "style")) == 2


def test_check_pair_rejects_on_the_first_broken_rule(quickstart):
    config = quickstart.recipe.tasks.style.model_copy(update={"max_clip_similarity": 0.9})
    ctx = TaskContext(quickstart, "train", PAIR_RULES)
    target = Candidate(spec=SimpleNamespace(spec_id="c0"))  # type: ignore[arg-type]  # the key only

    def check(scores):
        return ctx.check_pair("style", config, target, scores)

    good = {"pair.color_similarity": 0.9, "pair.phash_distance": 20.0, "pair.clip_similarity": 0.5}
    assert check(good) is None
    copy = check({**good, "pair.phash_distance": 2.0})
    assert copy.reason == "style_near_duplicate" and "min 6" in copy.detail
    assert copy.scores["pair.phash_distance"] == 2.0
    both = check({**good, "pair.color_similarity": 0.1, "pair.clip_similarity": 0.99})
    assert both.reason == "style_color_mismatch"
    unscored = check({**good, "pair.clip_similarity": None})
    assert unscored.reason == "style_near_duplicate" and "not computed" in unscored.detail
