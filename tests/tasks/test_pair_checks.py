"""Each pair failure the renderer can draw is refused by the pair check made for it.

The renderer draws the failure into one member of a group and says so only in its
truth; the pair builders see the pixels (OCR lines, subject masks) and nothing else.
(`other_motif` is not here: the motif check is off in the quickstart until its texture
measure tells motifs apart; benchmarks/fidelity_pairs.py reports how well it does.)
"""

from __future__ import annotations

import pytest
from helpers import annotate_and_filter

from datapipe.plan import plan_groups
from datapipe.stages.prompt import PromptStage
from datapipe.stages.render import RenderStage
from datapipe.stages.tasks import TaskStage

CASES = [
    ("rescale", "other_subject", {"rescale_subject_mismatch"}),
    ("rescale", "text_changed", {"rescale_text_mismatch"}),
    ("rescale", "colours_changed", {"rescale_color_mismatch"}),
    ("layout", "moved", {"layout_mismatch"}),
    ("layout", "copies_reference", {"layout_same_subject"}),
    ("style", "other_palette", {"style_color_mismatch"}),
    # a copy of the reference is refused as a near-copy (pHash) or for its subject,
    # whichever of style's checks comes first
    ("style", "copies_reference", {"style_near_duplicate", "style_same_subject"}),
]


def drawn_with(loaded, kind: str, fault: str, monkeypatch):
    """The first group of `kind` whose members are all kept, drawn with `fault`, and
    which member the renderer broke (from its truth, for grading)."""
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
    prompt = PromptStage(loaded)
    prompt.setup()
    for slot in [s for s in plan_groups(loaded) if s.kind == kind][:4]:
        group = prompt.process_batch([slot.to_group()])[0]
        (group,) = annotate_and_filter(loaded, [group])
        truth = taken["stage"].take_truth([group])
        if all(c.kept for c in group.candidates):
            broken = [k for k, entry in truth.items() if entry.truth.pair_fault == fault]
            return group, broken
    pytest.skip(f"no {kind} group with every member kept among the first four")


@pytest.mark.parametrize(("kind", "fault", "reasons"), CASES)
def test_a_drawn_pair_failure_is_refused_for_its_reason(
    quickstart, monkeypatch, kind, fault, reasons
):
    group, broken = drawn_with(quickstart, kind, fault, monkeypatch)
    assert broken, "the renderer drew no pair failure"
    stage = TaskStage(quickstart, only={kind})
    stage.setup()
    (group,) = stage.process_batch([group])
    refused = {r.candidate_key: r.reason for r in group.pair_rejects}
    # the broken member as a target: its pair with the next member fails the check
    made = {s.key: s.meta["scores"]["pair"] for s in group.samples}
    assert refused.get(broken[0]) in reasons, (refused, made)
