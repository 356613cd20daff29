"""Verdicts from scores: the one comparison of a score with a rule's bounds, used by the
filter (candidate thresholds), the task stage (pair rules), `score` and inspection.

Pair rules are data: each task's row in `datapipe.tasks.registry` lists them, with the
task setting that holds each bound. Builders only measure; the task stage checks the
pair against the rules, and inspection draws the same thresholds from the same list.
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
    """A pair check: `score` must be at least (`min`) or at most (`max`) the task setting
    `setting`, or the fixed `value`. An unset setting is not checked.

    A score the builder did not measure (absent: e.g. the CLIP subject score where the
    pixel descriptor was used) is not this rule's business. A measured score of None
    ("could not be measured": no subject mask) passes unless the rule is `required`,
    where a pair that cannot show it holds must not be built. `meaning` says in words
    what breaking the rule means, for the rejection's detail.
    """

    reason: str
    score: str
    bound: Literal["min", "max"]
    setting: str | None = None
    value: float | None = None
    required: bool = False
    meaning: str = ""

    def rule(self, settings: Mapping[str, Any]) -> Rule | None:
        """The rule under these task settings (a task config as a mapping)."""
        value = self.value if self.setting is None else settings.get(self.setting)
        return None if value is None else Rule(score=self.score, **{self.bound: value})

    def broken_by(
        self, settings: Mapping[str, Any], scores: Mapping[str, float | None]
    ) -> str | None:
        """How these scores break the rule under these settings, or None."""
        rule = self.rule(settings)
        if rule is None or self.score not in scores:
            return None
        value = scores[self.score]
        if value is None:
            return f"{self.score} could not be measured" if self.required else None
        problem = broken(value, rule)
        if problem is None:
            return None
        return f"{problem}: {self.meaning}" if self.meaning else problem


def first_broken(
    rules: tuple[PairRule, ...], settings: Mapping[str, Any], scores: Mapping[str, float | None]
) -> tuple[str, str] | None:
    """The first rule, in the task's order, that the pair breaks: (reason, detail).

    A pair is rejected for one reason, the first, as its builder would stop there; its
    scores are stored with the rejection so every other rule can still be read off."""
    for pair_rule in rules:
        problem = pair_rule.broken_by(settings, scores)
        if problem is not None:
            return pair_rule.reason, problem
    return None
