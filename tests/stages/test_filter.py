"""Verdicts: every broken variant is rejected for the right reason; a good render is kept."""

from __future__ import annotations

import pytest
from helpers import annotate_and_filter, first_group, variant_of, with_variant

from datapipe.recipe import Rule
from datapipe.stages.filter import evaluate

EXPECTED = {
    "wrong_text": "text_mismatch",
    "missing_text": "text_missing",
    "no_subject": "subject_missing",
    "collapsed": "layout_collapsed",
    "blank": "blank",
    "truncated": "image_unreadable",
}


@pytest.fixture(scope="module")
def judged(quickstart):
    base = first_group(quickstart)
    groups = [with_variant(base, v) for v in ("good", *EXPECTED)]
    return {
        variant_of(g.candidates[0]): g.candidates[0]
        for g in annotate_and_filter(quickstart, groups)
    }


def test_good_render_is_kept(judged):
    good = judged["good"]
    assert good.verdict.keep, good.verdict
    assert good.scores["ocr.missing_lines"] == 0
    assert good.scores["ocr.min_line_ned"] >= 0.9


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_broken_variant_is_rejected_for_its_reason(judged, variant):
    verdict = judged[variant].verdict
    assert not verdict.keep
    assert EXPECTED[variant] in verdict.reasons, verdict
    assert EXPECTED[variant] in verdict.details


def test_scores_stay_on_rejected_candidates(judged):
    assert "quality.std" in judged["blank"].scores
    assert "ocr.min_line_ned" in judged["wrong_text"].scores


def test_wrong_text_is_read_but_does_not_match(judged):
    rows = judged["wrong_text"].details["ocr"]["lines"]
    assert any(row["found"] and row["ned"] < 0.8 for row in rows)


RULES = {
    "low": Rule(score="a.x", min=1.0),
    "high": Rule(score="a.y", max=2.0),
}


def test_every_failed_rule_is_listed():
    verdict = evaluate({"a.x": 0.5, "a.y": 3.0}, RULES, image_failed=False)
    assert verdict.reasons == ["low", "high"]
    assert verdict.details["low"] == "a.x=0.5 < min 1"


def test_absent_score_fails_but_none_is_not_applicable():
    assert evaluate({"a.y": 1.0}, RULES, image_failed=False).reasons == ["low"]
    assert evaluate({"a.x": None, "a.y": 1.0}, RULES, image_failed=False).keep
    assert evaluate({}, RULES, image_failed=True).keep
