"""The offline benchmark judge: a verdict from the scores already stored with a sample.

It answers in the same form as the Gemini judge (suitable, reasons, 1-5 scores per
dimension) so the bench stage treats both alike. Each dimension's score is the lowest
band reached by the stored scores the recipe maps to it (`bench.judge.bands`); a score
that was not computed for this sample (a pair score of a single-poster task, CLIP
when it is off) leaves its band out, and a dimension with no band left is not scored.
"""

from __future__ import annotations

from collections.abc import Mapping

from datapipe.backends.base import JudgeVerdict
from datapipe.recipe import JudgeBand, JudgeConfig


def band_score(value: float, band: JudgeBand) -> int:
    return 1 + sum(value >= cut for cut in band.cuts)


class RulesJudge:
    version = "rules"

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config

    def judge(self, task: str, scores: Mapping[str, float | None]) -> JudgeVerdict:
        """`scores`: the target's candidate scores and the pair's `pair.*` scores."""
        result: dict[str, int] = {}
        reasons: list[str] = []
        for dimension, bands in self.config.bands.items():
            found: list[tuple[int, str]] = []
            for band in bands:
                value = scores.get(band.score)
                if (band.tasks is None or task in band.tasks) and value is not None:
                    found.append((band_score(float(value), band), band.score))
            if found:
                worst, name = min(found)
                result[dimension] = worst
                if worst < self.config.min_scores.get(dimension, 1):
                    reasons.append(f"{dimension} {worst}/5 from {name}={scores[name]:g}")
        return JudgeVerdict(suitable=not reasons, reasons=reasons, scores=result)
