"""The thresholds a run applied, as lines to draw on score histograms.

Candidate thresholds come from the recipe (`thresholds: reason: {score, min, max}`);
pair checks are the task registry's pair rules, with bounds from their task settings.
Both are read from the resolved recipe in `run.json`, so the lines are the ones the
run used, not the ones the recipe file says today.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datapipe.recipe import Rule
from datapipe.tasks.registry import PAIR_RULES
from datapipe.verdicts import broken

KEY_SCORES = (
    "ocr.min_found_ned",
    "ocr.missing_lines",
    "quality.std",
    "quality.content_extent",
    "subject.area",
)
"""Target scores shown on each sample (notebook views and the report); pair scores
(`pair.*`) are always shown too."""


@dataclass(frozen=True)
class Threshold:
    """One bound of one rule: `score` must be >= value (kind "min") or <= value ("max")."""

    reason: str
    score: str
    kind: str
    value: float

    @property
    def rule(self) -> Rule:
        return Rule(score=self.score, **{self.kind: self.value})

    @property
    def label(self) -> str:
        sign = ">=" if self.kind == "min" else "<="
        return f"{self.reason}: {self.score} {sign} {self.value:g}"


def candidate_thresholds(recipe: dict[str, Any]) -> list[Threshold]:
    """Every bound of the recipe's candidate thresholds, in recipe order."""
    out = []
    for reason, rule in (recipe.get("thresholds") or {}).items():
        for kind in ("min", "max"):
            if rule.get(kind) is not None:
                out.append(Threshold(reason, rule["score"], kind, float(rule[kind])))
    return out


def pair_thresholds(recipe: dict[str, Any], task: str) -> list[Threshold]:
    """The pair checks of one task's builder (empty for extend, fill, identity)."""
    settings = (recipe.get("tasks") or {}).get(task) or {}
    out = []
    for pair_rule in PAIR_RULES.get(task, ()):
        rule = pair_rule.rule(settings)
        if rule is not None:
            bound = rule.min if pair_rule.bound == "min" else rule.max
            out.append(Threshold(pair_rule.reason, rule.score, pair_rule.bound, float(bound)))
    return out


def thresholds_by_score(thresholds: list[Threshold]) -> dict[str, list[Threshold]]:
    out: dict[str, list[Threshold]] = {}
    for threshold in thresholds:
        out.setdefault(threshold.score, []).append(threshold)
    return out


def outside(value: float | None, thresholds: list[Threshold]) -> bool:
    """Is a value on the wrong side of any of these bounds? None is "not applicable"."""
    if value is None or value != value:  # NaN from pandas means the same as None
        return False
    return any(broken(value, t.rule) is not None for t in thresholds)
