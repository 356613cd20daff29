"""Each pair failure the renderer can draw is refused by the pair check made for it.

The renderer draws the failure into one member of a group and says so only in its
truth; the pair builders see the pixels (OCR lines, subject masks) and nothing else.
(`other_motif` is not here: the motif check is off in the quickstart; tests/tasks/
test_motif.py checks the measure and benchmarks/fidelity_pairs.py grades it.)
"""

from __future__ import annotations

import pytest
from helpers import annotate_and_filter

from datapipe.plan import plan_groups
from datapipe.records import PairReject
from datapipe.stages.prompt import PromptStage
from datapipe.stages.registry import build_stage
from datapipe.stages.render import RenderStage
from datapipe.stages.tasks import TaskStage
from datapipe.tasks.common import TaskContext
from datapipe.tasks.registry import TASKS

CASES = [
    ("rescale", "other_subject", {"rescale_subject_mismatch"}),
    ("rescale", "colours_changed", {"rescale_color_mismatch"}),
    ("layout", "moved", {"layout_mismatch"}),
    ("layout", "copies_reference", {"layout_same_subject"}),
    ("style", "other_palette", {"style_color_mismatch"}),
    # a copy of the reference is refused as a near-copy (pHash) or for its subject,
    # whichever of style's checks comes first
    ("style", "copies_reference", {"style_near_duplicate", "style_same_subject"}),
]


def drawn_with(loaded, kind: str, fault: str, monkeypatch, broken_kept: bool = True):
    """The first group of `kind` whose members are all kept (or all but the broken one,
    where `broken_kept` is False), drawn with `fault`, and which member the renderer
    broke (from its truth, for grading)."""
    faults = loaded.recipe.stages.render.faults.model_copy(
        update={"rate": 0.0, "pair_rate": 1.0, "pair_kinds": [fault]}
    )
    taken: dict = {}
    original = RenderStage.setup

    def setup(stage: RenderStage) -> None:
        original(stage)
        stage.renderer.faults = faults
        taken["stage"] = stage

    monkeypatch.setattr(RenderStage, "setup", setup)
    prompt = build_stage(PromptStage, loaded)
    prompt.setup()
    for slot in [s for s in plan_groups(loaded) if s.kind == kind][:4]:
        group = prompt.process_batch([slot.to_group()])[0]
        (group,) = annotate_and_filter(loaded, [group])
        truth = taken["stage"].take_truth([group])
        broken = [k for k, entry in truth.items() if entry.truth.pair_fault == fault]
        if all(c.kept for c in group.candidates if broken_kept or c.key not in broken):
            return group, broken
    pytest.skip(f"no {kind} group with its members kept among the first four")


@pytest.mark.parametrize(("kind", "fault", "reasons"), CASES)
def test_a_drawn_pair_failure_is_refused_for_its_reason(
    quickstart, monkeypatch, kind, fault, reasons
):
    group, broken = drawn_with(quickstart, kind, fault, monkeypatch)
    assert broken, "the renderer drew no pair failure"
    stage = TaskStage(TaskContext.of(quickstart), only={kind})
    stage.setup()
    (group,) = stage.process_batch([group])
    refused = {r.candidate_key: r.reason for r in group.pair_rejects}
    # the broken member as a target: its pair with the next member fails the check
    made = {s.key: s.meta["scores"]["pair"] for s in group.samples}
    assert refused.get(broken[0]) in reasons, (refused, made)


def test_a_rescale_twin_with_other_text_fails_the_filter_and_the_text_check(
    quickstart, monkeypatch
):
    """A twin drawn with a line cut short no longer reads as its copy, so the render
    filter rejects it first; the pair check, fed that twin anyway, refuses it on its own."""
    group, broken = drawn_with(quickstart, "rescale", "text_changed", monkeypatch, False)
    assert broken, "the renderer drew no pair failure"
    twin = next(c for c in group.candidates if c.key == broken[0])
    source = next(c for c in group.candidates if c.key != broken[0])
    assert not twin.kept and any(r.startswith("text_") for r in twin.verdict.reasons)
    made = TASKS["rescale"].pair(
        TaskContext.of(quickstart), quickstart.recipe.tasks.rescale, group, source, twin
    )
    assert isinstance(made, PairReject) and made.reason == "rescale_text_mismatch", made
