"""Fidelity of the pair checks and of the offline subject masks, graded by the truth.

Compares: each pair check's verdicts (rescale, layout, style) with the pair failures the
procedural renderer drew on purpose into one member of a share of groups (another
subject, text or colours in a rescale twin; elements moved in a layout twin; another
palette or motif in a style twin; a layout or style twin that copies its reference),
as precision and recall per check (targets: recall >= 0.90 at precision >= 0.95); and
the offline subject masks (found from the pixels) against the masks the renderer drew:
median IoU (>= 0.90), the share under 0.75, how many fill (subject mask) and
identity samples were built from a mask under 0.75 IoU (target 0), and the price of
rejecting bad masks: the share of good masks (IoU >= 0.75) the `subject_uncertain` rule
keeps. A broken member the render filter already rejects (a twin whose text no longer
matches its copy) never reaches a pair check in a run: those are counted apart, per
failure kind, and still paired with a kept member for grading, so each pair check is
measured on every failure drawn for it (rescale's text check only ever sees such twins:
a text change that a render's own text rules let through agrees with the copy).

The pipeline never reads the truth: this benchmark does, after the run, from the
truth store next to the candidate store. Each check is evaluated on its own from the
pair scores the builders record, so one check's verdict never hides another's. (Style
has two checks for a copy of the reference: pHash, for a near-copy of the whole poster,
and the subject check; each is graded on its own.)

    python benchmarks/fidelity_pairs.py [--quick] [--json out.json]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import Figure, Result, main, quickstart_data, write_recipe

GROUPS = {"single": 0, "rescale": 48, "style": 24, "layout": 24}
QUICK_GROUPS = {"single": 0, "rescale": 8, "style": 4, "layout": 4}
PAIR_RATE = 0.5
IOU_FLOOR = 0.75
MOTIF_BOUND = 0.45
"""tasks.style.min_motif_similarity graded here: the recipes keep the motif check off
(0). On the quickstart it would cost 1 of 44 style pairs, a clean one (two grunge grounds,
film grain alone, at 0.44): about 2% of clean pairs, where real motif faults are rare,
and it has not been measured on diffusion renders."""


CATCHES: dict[str, frozenset[str]] = {
    "rescale_text_mismatch": frozenset({"text_changed"}),
    "rescale_subject_mismatch": frozenset({"other_subject"}),
    "rescale_color_mismatch": frozenset({"colours_changed"}),
    "layout_mismatch": frozenset({"moved"}),
    "layout_same_subject": frozenset({"copies_reference"}),
    "style_color_mismatch": frozenset({"other_palette"}),
    "style_motif_mismatch": frozenset({"other_motif"}),
    "style_same_subject": frozenset({"copies_reference"}),
}
"""The pair failures each check (a reason of the task registry's pair rules) is there to
catch; the rules themselves, their scores and bounds, are the registry's. Style's
near-duplicate rules (pHash, CLIP) guard against a whole poster repeated, which the
renderer does not draw: a twin copying the reference's subject is same_subject's case."""


def pair_labels(target: Any, reference: Any, truth: dict[str, Any]) -> set[str]:
    """The pair failures a (reference -> target) pair carries, by the renderer's truth."""
    labels = set()
    for member, other in ((target, reference), (reference, target)):
        entry = truth.get(member.key)
        kind = entry.truth.pair_fault if entry else None
        if kind is None:
            continue
        if kind == "copies_reference" and entry.truth.pair_with != other.key:
            continue  # a copy of a third member: this pair is not a copy
        labels.add(kind)
    return labels


def task_of(reason: str) -> str:
    from datapipe.tasks.registry import TASKS

    return next(t for t, row in TASKS.items() if any(r.reason == reason for r in row.pair_rules))


def fired(task: str, reason: str, scores: dict[str, Any], settings: Any) -> bool:
    """Would the task stage reject the pair for `reason`, whatever rule came first?"""
    from datapipe.tasks.registry import TASKS

    rules = [r for r in TASKS[task].pair_rules if r.reason == reason]
    return any(r.broken_by(settings.model_dump(), scores) is not None for r in rules)


def grade(out: Path, loaded: Any) -> dict[str, Any]:
    """Every pair the builders make from the kept members, each check's verdict and the
    pair's labels; every good render's mask IoU; the fill and identity samples' masks."""
    import numpy as np

    from datapipe.images import load_mask
    from datapipe.io.candidate_store import CandidateStore
    from datapipe.io.truth_store import TruthStore
    from datapipe.records import Sample
    from datapipe.stages.filter import FilterStage
    from datapipe.tasks.common import TaskContext
    from datapipe.tasks.fill import build_fill
    from datapipe.tasks.identity import build_identity
    from datapipe.tasks.registry import pair_task

    store, truths = CandidateStore(out), TruthStore(out)
    ctx = TaskContext.of(loaded)
    tasks = ctx.tasks
    filter_stage = FilterStage(loaded.recipe.split_thresholds("train"))
    filter_stage.setup()
    pairs: list[dict[str, Any]] = []
    ious: dict[str, float] = {}
    confidences: dict[str, float | None] = {}
    members: dict[str, dict[str, int]] = {}
    """pair failure -> broken members rejected by the render filter, and kept."""
    built_from: list[float] = []
    for block in truths.blocks():
        truth = truths.load(block)
        for group in filter_stage.process_batch(store.load(block)):
            for candidate in group.candidates:
                entry = truth.get(candidate.key)
                if entry is None or entry.truth.fault != "good" or entry.mask is None:
                    continue
                drawn = load_mask(entry.mask)
                found = (
                    load_mask(candidate.subject_mask)
                    if candidate.subject_mask
                    else np.zeros_like(drawn)
                )
                union = np.count_nonzero(drawn | found)
                ious[candidate.key] = float(np.count_nonzero(drawn & found) / union if union else 1)
                confidences[candidate.key] = candidate.scores.get("subject.confidence")
            kept = [c for c in group.candidates if c.kept]
            for candidate in group.candidates:
                entry = truth.get(candidate.key)
                if entry is not None and entry.truth.pair_fault:
                    count = members.setdefault(entry.truth.pair_fault, {"filtered": 0, "kept": 0})
                    count["kept" if candidate.kept else "filtered"] += 1
            for candidate in kept:
                for builder, settings in (
                    (build_fill, tasks.fill),
                    (build_identity, tasks.identity),
                ):
                    sample = builder(ctx, settings, group, candidate)
                    if (
                        isinstance(sample, Sample)
                        and sample.meta["params"].get("mask_kind", "subject") == "subject"
                    ):
                        built_from.append(
                            (
                                candidate.key,
                                ious.get(candidate.key, 1.0),
                                candidate.scores.get("subject.confidence"),
                            )
                        )
            row = pair_task(group.kind)
            if row is None or not kept:
                continue
            ordered = [
                (target, kept[(i + 1) % len(kept)])
                for i, target in enumerate(kept)
                if len(kept) >= 2
            ]
            for broken in group.candidates:
                entry = truth.get(broken.key)
                if broken.kept or entry is None or not entry.truth.pair_fault:
                    continue
                # a broken member the render filter rejected, paired with a kept one both
                # ways: the pair check is graded on its own, not hidden by the filter
                ordered += [(broken, kept[0]), (kept[0], broken)]
            for target, reference in ordered:
                made = row.pair(ctx, row.config(tasks), group, reference, target)
                built = isinstance(made, Sample)
                scores = made.meta["scores"]["pair"] if built else made.scores
                pairs.append(
                    {
                        "task": row.name,
                        "target": target.key,
                        "reference": reference.key,
                        "labels": sorted(pair_labels(target, reference, truth)),
                        "filtered": not (target.kept and reference.kept),
                        "built": built,
                        "reason": None if built else made.reason,
                        "scores": scores,
                    }
                )
    return {
        "pairs": pairs,
        "ious": ious,
        "confidences": confidences,
        "built_from": built_from,
        "members": members,
    }


def check_figures(graded: dict[str, Any], loaded: Any) -> tuple[list[Figure], dict[str, Any]]:
    figures, raw = [], {}
    tasks = loaded.recipe.tasks
    for task, reason in ((task_of(r), r) for r in CATCHES):
        settings = getattr(tasks, task)
        mine = [p for p in graded["pairs"] if p["task"] == task]
        positives = [p for p in mine if CATCHES[reason] & set(p["labels"])]
        clean = [p for p in mine if not p["labels"] and not p["filtered"]]
        caught = sum(fired(task, reason, p["scores"], settings) for p in positives)
        false = sum(fired(task, reason, p["scores"], settings) for p in clean)
        filtered = sum(p["filtered"] for p in positives)
        recall = caught / len(positives) if positives else None
        precision = caught / (caught + false) if caught + false else None
        name = f"{task} {reason}"
        note = (
            f"{caught}/{len(positives)} caught ({filtered} with a member the render filter "
            f"rejected first), {false} of {len(clean)} clean pairs rejected"
        )
        figures.append(Figure(f"{name} recall", recall, ">= 0.9", note=note))
        figures.append(Figure(f"{name} precision", precision, ">= 0.95"))
        raw[reason] = {
            "positives": len(positives),
            "filtered_first": filtered,
            "caught": caught,
            "clean": len(clean),
            "clean_rejected": false,
        }
    return figures, raw


def run(quick: bool) -> Result:
    from datapipe.loading import load_recipe
    from datapipe.runner.local import run_local

    result = Result(
        "fidelity: pair checks and subject masks",
        "pair-check verdicts vs the pair failures the procedural renderer drew (precision, "
        "recall per check); pixel subject masks vs the drawn masks (IoU)",
    )
    override = {
        "groups": QUICK_GROUPS if quick else GROUPS,
        "stages": {"render": {"faults": {"rate": 0.0, "pair_rate": PAIR_RATE}}},
        "tasks": {"style": {"min_motif_similarity": MOTIF_BOUND}},
    }
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_recipe(write_recipe(Path(tmp) / "pairs.yaml", quickstart_data(override)))
        out = Path(tmp) / "out"
        run_local(loaded, out)
        graded = grade(out, loaded)
    figures, raw = check_figures(graded, loaded)
    ious = list(graded["ious"].values())
    built_from = graded["built_from"]
    figures += [
        Figure("subject mask median IoU", round(statistics.median(ious), 4), ">= 0.9"),
        Figure(
            f"subject masks under {IOU_FLOOR} IoU",
            round(sum(i < IOU_FLOOR for i in ious) / len(ious), 4),
            note=f"of {len(ious)} good renders; the subject_uncertain rule rejects most",
        ),
        Figure(
            f"fill/identity samples from a mask under {IOU_FLOOR} IoU",
            float(sum(i < IOU_FLOOR for _, i, _ in built_from)),
            "<= 0",
            note=f"of {len(built_from)} subject-mask samples",
        ),
    ]
    rule = loaded.recipe.thresholds.get("subject_uncertain")
    if rule is not None and rule.min is not None:
        good = [k for k, i in graded["ious"].items() if i >= IOU_FLOOR]
        trusted = sum((graded["confidences"][k] or 0.0) >= rule.min for k in good)
        figures.append(
            Figure(
                f"good masks (IoU >= {IOU_FLOOR}) that subject_uncertain keeps",
                round(trusted / len(good), 4) if good else None,
                note=f"{trusted} of {len(good)} (subject.confidence >= {rule.min})",
            )
        )
    for kind, count in sorted(graded["members"].items()):
        total = count["filtered"] + count["kept"]
        figures.append(
            Figure(
                f"{kind}: broken members the render filter rejected",
                round(count["filtered"] / total, 4),
                note=f"{count['filtered']} of {total}; the rest reach the pair checks",
            )
        )
    result.figures = figures
    result.raw = {
        "checks": raw,
        "members": graded["members"],
        "pairs": graded["pairs"],
        "ious": graded["ious"],
        "built_from": built_from,
    }
    return result


if __name__ == "__main__":
    sys.exit(main(run, __doc__))
