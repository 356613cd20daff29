"""The task registry: one row per task, read by everything that needs to know what a
task is — the task stage (which builder, per poster or per pair, and the pair checks it
applies), the planner and the bench (which group kind a sample is built from), regen
(which groups can feed a task), the bench's mask requirement, and inspection and the
report (the pair thresholds: the same rules the task stage applies).

A seventh task is a builder file in tasks/, its row here, and its settings class in the
recipe schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from datapipe.recipe import ALL_TASKS, GROUP_KINDS, GroupKind, TasksConfig
from datapipe.records import Candidate, Group, PairReject, Sample
from datapipe.tasks.common import TaskContext
from datapipe.tasks.extend import build_extend
from datapipe.tasks.fill import build_fill
from datapipe.tasks.identity import build_identity
from datapipe.tasks.layout import build_layout, measure_layout
from datapipe.tasks.rescale import build_rescale, measure_rescale
from datapipe.tasks.style import build_style, measure_style
from datapipe.tasks.subjects import SUBJECT_SCORES
from datapipe.verdicts import PairRule, first_broken

Scores = dict[str, float | None]

PerPoster = Callable[[TaskContext, Any, Group, Candidate], "Sample | PairReject"]
PerPair = Callable[[TaskContext, Group, Candidate, Candidate, Scores], Sample]
Measure = Callable[[Any, Candidate, Candidate], "Scores | PairReject"]
"""A pair task's measurements of (reference, target), or why the two make no pair at
all (another entity, other copy): the task stage checks the scores against the row's
pair rules and builds the sample only from a pair that passes them."""


@dataclass(frozen=True)
class TaskRow:
    """What a task is.

    `per`: "poster" builders make a sample from each kept poster of any group;
    "pair" builders make one from two kept members of a group of `group_kind`, after
    `measure` has scored the pair and the task stage has checked `pair_rules`, in
    order: the first rule broken is the rejection's reason.
    `group_kind`: the group a bench sample of the task is built from.
    `subject_mask`: its samples use a subject mask, so the bench may require one.
    `instructions`: the instruction templates (prompts/instructions.yaml) its builder
    draws from, with the placeholders it fills in them.
    """

    name: str
    per: Literal["poster", "pair"]
    group_kind: GroupKind
    builder: PerPoster | PerPair
    measure: Measure | None = None
    pair_rules: tuple[PairRule, ...] = ()
    subject_mask: bool = False
    instructions: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def config(self, tasks: TasksConfig) -> BaseModel:
        """The task's own settings, the only part of the recipe its builder is handed."""
        return getattr(tasks, self.name)

    def group_kinds(self) -> tuple[str, ...]:
        """Every group kind that can feed the task."""
        return GROUP_KINDS if self.per == "poster" else (self.group_kind,)

    def pair(
        self,
        ctx: TaskContext,
        config: BaseModel,
        group: Group,
        reference: Candidate,
        target: Candidate,
    ) -> Sample | PairReject:
        """A pair task's sample from (reference, target): measured, checked against the
        row's rules under the task's settings, and built only if it passes them."""
        if self.measure is None:
            raise TypeError(f"task {self.name} is built per poster, not from pairs")
        scores = self.measure(config, reference, target)
        if isinstance(scores, PairReject):
            return scores
        broken = first_broken(self.pair_rules, config.model_dump(), scores)
        if broken is not None:
            reason, detail = broken
            return PairReject(self.name, target.key, reason, detail, dict(scores))
        return self.builder(ctx, group, reference, target, scores)


def _subject_rules(reason: str, bound: Literal["min", "max"], meaning: str) -> tuple[PairRule, ...]:
    """The subject check under each of its measures (CLIP crops, or the pixel
    descriptor where no embedding exists), each with its own bound."""
    required = bound == "min"  # a pair that promises one subject must show one
    return (
        PairRule(
            reason,
            SUBJECT_SCORES["descriptor"],
            bound,
            f"{bound}_subject_similarity",
            required=required,
            meaning=meaning,
        ),
        PairRule(
            reason,
            SUBJECT_SCORES["clip"],
            bound,
            f"{bound}_subject_clip_similarity",
            required=required,
            meaning=meaning,
        ),
    )


SIZE = frozenset({"width", "height", "ratio"})
"""The placeholders of an instruction that names the target's size."""
NOT_THE_REFERENCE = "the target shows the reference's subject"

TASKS: dict[str, TaskRow] = {
    row.name: row
    for row in (
        TaskRow(
            "extend",
            "poster",
            "single",
            build_extend,
            instructions={
                "extend_canvas": SIZE | {"entity"},
                "extend_crop": SIZE | {"entity"},
            },
        ),
        TaskRow(
            "fill",
            "poster",
            "single",
            build_fill,
            subject_mask=True,
            instructions={
                "fill_subject": frozenset({"entity"}),
                "fill_text": frozenset({"text"}),
                "fill_freeform": frozenset({"entity"}),
            },
        ),
        TaskRow(
            "rescale",
            "pair",
            "rescale",
            build_rescale,
            measure_rescale,
            (
                PairRule(
                    "rescale_text_mismatch",
                    "pair.text_match",
                    "min",
                    "min_text_match",
                    meaning="OCR reads other text on the two",
                ),
                *_subject_rules("rescale_subject_mismatch", "min", "another or no subject"),
                PairRule(
                    "rescale_color_mismatch",
                    "pair.color_similarity",
                    "min",
                    "min_color_similarity",
                    meaning="other colours",
                ),
                PairRule(
                    "rescale_clip_mismatch",
                    "pair.clip_similarity",
                    "min",
                    "min_clip_similarity",
                    required=True,
                    meaning="the CLIP image embeddings differ",
                ),
            ),
            instructions={"rescale": SIZE},
        ),
        TaskRow(
            "identity",
            "poster",
            "single",
            build_identity,
            subject_mask=True,
            instructions={"identity": frozenset({"entity", "style", "copy"})},
        ),
        TaskRow(
            "layout",
            "pair",
            "layout",
            build_layout,
            measure_layout,
            (
                PairRule(
                    "layout_mismatch",
                    "pair.layout_match",
                    "min",
                    "min_layout_match",
                    meaning="the target's elements miss the reference's slots",
                ),
                *_subject_rules("layout_same_subject", "max", NOT_THE_REFERENCE),
            ),
            instructions={"layout": frozenset({"entity", "copy", "style"})},
        ),
        TaskRow(
            "style",
            "pair",
            "style",
            build_style,
            measure_style,
            (
                PairRule(
                    "style_color_mismatch",
                    "pair.color_similarity",
                    "min",
                    "min_color_similarity",
                    meaning="another palette",
                ),
                PairRule(
                    "style_motif_mismatch",
                    "pair.motif_similarity",
                    "min",
                    "min_motif_similarity",
                    meaning="another background texture",
                ),
                PairRule(
                    "style_near_duplicate",
                    "pair.phash_distance",
                    "min",
                    "min_phash_distance",
                    meaning="a near-copy of the reference",
                ),
                PairRule(
                    "style_near_duplicate",
                    "pair.clip_similarity",
                    "max",
                    "max_clip_similarity",
                    required=True,
                    meaning="a near-copy of the reference",
                ),
                *_subject_rules("style_same_subject", "max", NOT_THE_REFERENCE),
            ),
            instructions={"style": frozenset({"entity", "copy"})},
        ),
    )
}
if tuple(TASKS) != ALL_TASKS:  # the recipe schema names the tasks its settings configure
    raise ImportError(f"task registry {tuple(TASKS)} differs from the recipe's {ALL_TASKS}")

PAIR_RULES: dict[str, tuple[PairRule, ...]] = {name: row.pair_rules for name, row in TASKS.items()}


def pair_task(group_kind: str) -> TaskRow | None:
    """The pair task built from groups of this kind (none for single posters)."""
    return next((r for r in TASKS.values() if r.per == "pair" and r.group_kind == group_kind), None)
