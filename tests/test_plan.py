"""The plan: deterministic, balanced, and every prefix keeps its ids."""

from __future__ import annotations

from collections import Counter

from datapipe.plan import plan_groups


def test_plan_counts_and_balance(quickstart):
    slots = plan_groups(quickstart)
    recipe = quickstart.recipe
    kinds = Counter(s.kind for s in slots)
    assert kinds == {k: v for k, v in recipe.groups.model_dump().items() if v}
    for kind in kinds:
        langs = Counter(s.language for s in slots if s.kind == kind)
        assert abs(langs["zh"] - langs["en"]) <= 1, (kind, langs)
        themes = Counter(s.theme for s in slots if s.kind == kind)
        assert max(themes.values()) - min(themes.values()) <= 2, (kind, themes)
    assert len({s.group_id for s in slots}) == len(slots)
    assert all(s.block == s.index // recipe.block_size for s in slots)


def test_plan_is_deterministic_and_limit_is_a_prefix(quickstart):
    full = plan_groups(quickstart)
    assert full == plan_groups(quickstart)
    assert plan_groups(quickstart, limit=7) == full[:7]
    assert all(s.group_id.startswith(f"{s.kind}-{quickstart.generation_hash[:8]}-") for s in full)
