"""Verdicts from scores: the one comparison of a score with a rule's bounds, used by the
filter (candidate thresholds), the task builders (pair rules), `score` and inspection.

Pair rules are data: each task's row in `datapipe.tasks.registry` lists them, with the
task setting that holds each bound, so the builders check and the inspection draws
the same thresholds from one list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from datapipe.recipe import Rule
from datapipe.records import Verdict


def broken(value: float, rule: Rule) -> str | None:
    """How `value` breaks `rule` (`score=v < min m`), or None when it is within bounds."""
    if rule.min is not None and value < rule.min:
        return f"{rule.score}={value:g} < min {rule.min:g}"
    if rule.max is not None and value > rule.max:
        return f"{rule.score}={value:g} > max {rule.max:g}"
    return None


def evaluate(
    scores: Mapping[str, float | None], rules: Mapping[str, Rule], image_failed: bool
) -> Verdict:
    """Apply every rule.

    A score that is None is "not applicable" and passes. A score that is absent fails
    its rule, because an annotator that silently skipped must never let a render
    through; the one exception is an image that could not be read, which is already
    rejected for that and was not annotated.
    """
    reasons: list[str] = []
    details: dict[str, str] = {}
    for reason, rule in rules.items():
        if rule.score not in scores:
            if image_failed:
                continue
            reasons.append(reason)
            details[reason] = f"{rule.score} was not computed"
            continue
        value = scores[rule.score]
        if value is None:
            continue
        problem = broken(value, rule)
        if problem is not None:
            reasons.append(reason)
            details[reason] = problem
    return Verdict(keep=not reasons, reasons=reasons, details=details)


@dataclass(frozen=True)
class PairRule:
    """A pair check of a task builder: `score` must be at least (`min`) or at most (`max`)
    the task setting `setting`, or the fixed `value`. An unset setting is not checked."""

    reason: str
    score: str
    bound: Literal["min", "max"]
    setting: str | None = None
    value: float | None = None

    def rule(self, settings: Mapping[str, Any]) -> Rule | None:
        """The rule under these task settings (a task config as a mapping)."""
        value = self.value if self.setting is None else settings.get(self.setting)
        return None if value is None else Rule(score=self.score, **{self.bound: value})
