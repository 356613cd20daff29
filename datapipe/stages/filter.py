"""FilterStage: scores in, a verdict with every failed reason out.

Thresholds come from the recipe as `reason: {score, min, max}`. Every rule is checked
(not just the first that fails) so the rejects table says everything wrong with a
candidate, and the scores stay on the candidate whatever the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

from datapipe.recipe import Rule
from datapipe.records import Candidate, Group, Verdict
from datapipe.stages.base import Resources, Stage

if TYPE_CHECKING:
    from pathlib import Path

    from datapipe.libraries import LoadedRecipe


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
        if rule.min is not None and value < rule.min:
            reasons.append(reason)
            details[reason] = f"{rule.score}={value:g} < min {rule.min:g}"
        elif rule.max is not None and value > rule.max:
            reasons.append(reason)
            details[reason] = f"{rule.score}={value:g} > max {rule.max:g}"
    return Verdict(keep=not reasons, reasons=reasons, details=details)


def image_failed(candidate: Candidate) -> bool:
    return bool(candidate.details.get("image", {}).get("error")) or not candidate.image


class FilterStage(Stage):
    name = "filter"
    resources: ClassVar[Resources] = Resources(cpus=0.25)
    batch_size: ClassVar[int] = 64

    def __init__(self, loaded: LoadedRecipe, out: Path | None = None, split: str = "train") -> None:
        """The bench split filters with its own, stricter rules."""
        super().__init__(loaded, out)
        self.rules = loaded.recipe.split_thresholds(split)

    def process_batch(self, groups: list[Group]) -> list[Group]:
        rules = self.rules
        for group in groups:
            for candidate in group.candidates:
                candidate.verdict = evaluate(candidate.scores, rules, image_failed(candidate))
        return groups
