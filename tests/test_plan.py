"""The plan: deterministic, balanced, and every prefix keeps its ids."""

from __future__ import annotations

from collections import Counter

from conftest import write_recipe

from datapipe.loading import load_recipe
from datapipe.plan import more_groups, plan_groups


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


def test_a_later_round_goes_on_with_each_kinds_languages_and_themes(tmp_path):
    """A target round's groups continue each kind's rotation where the plan left it: the
    same languages and themes as a plan that had asked for more of that kind."""
    quickstart = load_recipe(write_recipe(tmp_path, name="base.yaml"))
    counts = quickstart.recipe.groups.model_dump()
    more = {"single": 7, "layout": 5}
    blocks = more_groups(quickstart, more, counts, first_index=500, first_block=90)
    groups = [g for _, gs in sorted(blocks.items()) for g in gs]
    assert [g.index for g in groups] == list(range(500, 512))
    assert all(g.block == 90 + (g.index - 500) // quickstart.recipe.block_size for g in groups)
    assert Counter(g.kind for g in groups) == more
    bigger = {k: n + more.get(k, 0) for k, n in counts.items()}
    longer = plan_groups(load_recipe(write_recipe(tmp_path, {"groups": bigger})))
    for kind in more:
        expected = [(s.language, s.theme) for s in longer if s.kind == kind][counts[kind] :]
        assert [(g.language, g.theme) for g in groups if g.kind == kind] == expected
    planned = {s.group_id for s in plan_groups(quickstart)}
    assert not planned & {g.group_id for g in groups}
