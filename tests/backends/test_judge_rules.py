"""The offline judge: 1-5 scores from stored scores through the recipe's bands."""

from __future__ import annotations

from datapipe.backends.judge_rules import RulesJudge, band_score
from datapipe.recipe import JudgeBand, JudgeConfig

BAND = JudgeBand(score="ocr.min_found_ned", cuts=(0.8, 0.9, 0.95, 0.99))


def test_bands_map_values_to_one_to_five():
    values = [0.0, 0.8, 0.89, 0.9, 0.95, 0.989, 0.99, 1.0]
    assert [band_score(v, BAND) for v in values] == [1, 2, 2, 3, 4, 4, 5, 5]


def test_the_worst_band_decides_and_low_scores_are_reasons():
    judge = RulesJudge(JudgeConfig())
    good = {"ocr.min_found_ned": 1.0, "quality.contrast": 0.8, "subject.area": 0.1}
    verdict = judge.judge("fill", good)
    assert verdict.ok and verdict.suitable
    assert verdict.scores == {"text_accuracy": 5, "visual_quality": 5, "task_fit": 5}

    blurry_text = {**good, "ocr.min_found_ned": 0.91}
    verdict = judge.judge("fill", blurry_text)
    assert not verdict.suitable and verdict.scores["text_accuracy"] == 3
    assert verdict.reasons == ["text_accuracy 3/5 from ocr.min_found_ned=0.91"]


def test_pair_bands_apply_only_to_their_tasks_and_missing_scores_are_not_scored():
    judge = RulesJudge(JudgeConfig())
    scores = {"ocr.min_found_ned": 1.0, "subject.area": 0.1, "pair.layout_match": 0.65}
    layout = judge.judge("layout", scores)
    assert layout.scores["task_fit"] == 2 and not layout.suitable  # the layout band is worst
    fill = judge.judge("fill", scores)
    assert fill.scores["task_fit"] == 5 and fill.suitable
    assert "visual_quality" not in fill.scores  # quality.contrast was not given
