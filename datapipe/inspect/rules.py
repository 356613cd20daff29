"""The thresholds a run applied, as lines to draw on score histograms.

Candidate thresholds come from the recipe (`thresholds: reason: {score, min, max}`);
pair checks of the rescale, layout and style builders come from their task settings.
Both are read from the resolved recipe in `run.json`, so the lines are the ones the
run used, not the ones the recipe file says today.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PAIR_RULES: dict[str, list[tuple[str, str, str | float]]] = {
    "rescale": [
        ("rescale_text_mismatch", "pair.text_match", "min_text_match"),
        ("rescale_subject_mismatch", "pair.subject_similarity", "min_subject_similarity"),
        ("rescale_color_mismatch", "pair.color_similarity", "min_color_similarity"),
    ],
    "layout": [("layout_mismatch", "pair.layout_match", "min_layout_match")],
    "style": [
        ("style_color_mismatch", "pair.color_similarity", "min_color_similarity"),
        ("style_near_duplicate", "pair.phash_distance", "min_phash_distance"),
    ],
}
"""task -> (reason, pair score, task setting or constant): a pair below it is not made."""


@dataclass(frozen=True)
class Threshold:
    """One bound of one rule: `score` must be >= value (kind "min") or <= value ("max")."""

    reason: str
    score: str
    kind: str
    value: float

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
    for reason, score, source in PAIR_RULES.get(task, []):
        value = source if isinstance(source, float) else settings.get(source)
        if value is not None:
            out.append(Threshold(reason, score, "min", float(value)))
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
    return any(
        (t.kind == "min" and value < t.value) or (t.kind == "max" and value > t.value)
        for t in thresholds
    )
