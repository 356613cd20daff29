"""FilterStage: scores in, a verdict with every failed reason out.

Thresholds come from the recipe as `reason: {score, min, max}`; `datapipe.verdicts`
compares (task builders' pair rules use the same comparison). Every rule is checked
(not just the first that fails) so the rejects table says everything wrong with a
candidate, and the scores stay on the candidate whatever the verdict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from datapipe.records import Candidate, Group
from datapipe.stages.base import Resources, Stage
from datapipe.verdicts import evaluate

if TYPE_CHECKING:
    from datapipe.recipe import Rule


def image_failed(candidate: Candidate) -> bool:
    return bool(candidate.details.get("image", {}).get("error")) or not candidate.image


class FilterStage(Stage):
    name = "filter"
    resources: ClassVar[Resources] = Resources(cpus=0.25)
    batch_size: ClassVar[int] = 64

    config: dict[str, Rule]
    """The split's thresholds: the bench split filters with its own, stricter rules."""

    def process_batch(self, groups: list[Group]) -> list[Group]:
        rules = self.config
        for group in groups:
            for candidate in group.candidates:
                candidate.verdict = evaluate(candidate.scores, rules, image_failed(candidate))
        return groups
