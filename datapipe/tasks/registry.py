"""The task registry: one row per task, read by everything that needs to know what a
task is — the task stage (which builder, per poster or per pair), the planner and the
bench (which group kind a sample is built from), regen (which groups can feed a task),
the bench's mask requirement, and inspection and the report (the pair thresholds).

A seventh task is a builder file in tasks/, its row here, and its settings class in the
recipe schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from datapipe.recipe import ALL_TASKS, GROUP_KINDS, GroupKind, TasksConfig
from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.tasks.common import TaskContext
from datapipe.tasks.extend import build_extend
from datapipe.tasks.fill import build_fill
from datapipe.tasks.identity import build_identity
from datapipe.tasks.layout import build_layout
from datapipe.tasks.rescale import build_rescale
from datapipe.tasks.style import build_style
from datapipe.verdicts import PairRule

PerPoster = Callable[[TaskContext, Any, Group, Candidate], "Sample | PairReject"]
PerPair = Callable[[TaskContext, Any, Group, Candidate, Candidate], "Sample | PairReject"]


@dataclass(frozen=True)
class TaskRow:
    """What a task is.

    `per`: "poster" builders make a sample from each kept poster of any group;
    "pair" builders make one from two kept members of a group of `group_kind`.
    `group_kind`: the group a bench sample of the task is built from.
    `pair_rules`: the pair checks, for inspection's threshold lines; the builders of the
    rescale, layout and style tasks apply them themselves, because their subject check's
    bound depends on the measure used (CLIP where embedded, else a pixel descriptor: the
    rule shows the descriptor's).
    `subject_mask`: its samples use a subject mask, so the bench may require one.
    """

    name: str
    per: Literal["poster", "pair"]
    group_kind: GroupKind
    builder: PerPoster | PerPair
    pair_rules: tuple[PairRule, ...] = ()
    subject_mask: bool = False

    def config(self, tasks: TasksConfig) -> BaseModel:
        """The task's own settings, the only part of the recipe its builder is handed."""
        return getattr(tasks, self.name)

    def group_kinds(self) -> tuple[str, ...]:
        """Every group kind that can feed the task."""
        return GROUP_KINDS if self.per == "poster" else (self.group_kind,)


TASKS: dict[str, TaskRow] = {
    row.name: row
    for row in (
        TaskRow("extend", "poster", "single", build_extend),
        TaskRow("fill", "poster", "single", build_fill, subject_mask=True),
        TaskRow(
            "rescale",
            "pair",
            "rescale",
            build_rescale,
            (
                PairRule("rescale_text_mismatch", "pair.text_match", "min", "min_text_match"),
                PairRule(
                    "rescale_subject_mismatch",
                    "pair.subject_similarity",
                    "min",
                    "min_subject_similarity",
                ),
                PairRule(
                    "rescale_color_mismatch",
                    "pair.color_similarity",
                    "min",
                    "min_color_similarity",
                ),
                PairRule(
                    "rescale_clip_mismatch", "pair.clip_similarity", "min", "min_clip_similarity"
                ),
            ),
        ),
        TaskRow("identity", "poster", "single", build_identity, subject_mask=True),
        TaskRow(
            "layout",
            "pair",
            "layout",
            build_layout,
            (
                PairRule("layout_mismatch", "pair.layout_match", "min", "min_layout_match"),
                PairRule(
                    "layout_same_subject",
                    "pair.subject_similarity",
                    "max",
                    "max_subject_similarity",
                ),
            ),
        ),
        TaskRow(
            "style",
            "pair",
            "style",
            build_style,
            (
                PairRule(
                    "style_color_mismatch", "pair.color_similarity", "min", "min_color_similarity"
                ),
                PairRule(
                    "style_near_duplicate", "pair.phash_distance", "min", "min_phash_distance"
                ),
                PairRule(
                    "style_near_duplicate", "pair.clip_similarity", "max", "max_clip_similarity"
                ),
                PairRule(
                    "style_motif_mismatch",
                    "pair.motif_similarity",
                    "min",
                    "min_motif_similarity",
                ),
                PairRule(
                    "style_same_subject",
                    "pair.subject_similarity",
                    "max",
                    "max_subject_similarity",
                ),
            ),
        ),
    )
}
if tuple(TASKS) != ALL_TASKS:  # the recipe schema names the tasks its settings configure
    raise ImportError(f"task registry {tuple(TASKS)} differs from the recipe's {ALL_TASKS}")

PAIR_RULES: dict[str, tuple[PairRule, ...]] = {name: row.pair_rules for name, row in TASKS.items()}


def pair_task(group_kind: str) -> TaskRow | None:
    """The pair task built from groups of this kind (none for single posters)."""
    return next((r for r in TASKS.values() if r.per == "pair" and r.group_kind == group_kind), None)
