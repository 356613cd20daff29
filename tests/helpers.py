"""Run the candidate stages and the filter over hand-made groups."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from datapipe.libraries import LoadedRecipe
from datapipe.plan import plan_groups
from datapipe.records import Candidate, Group
from datapipe.stages.filter import FilterStage
from datapipe.stages.prompt import PromptStage
from datapipe.stages.registry import build_annotators, build_stage
from datapipe.stages.render import RenderStage


def first_group(loaded: LoadedRecipe, kind: str = "single") -> Group:
    slot = next(s for s in plan_groups(loaded) if s.kind == kind)
    stage = build_stage(PromptStage, loaded)
    stage.setup()
    return stage.process_batch([slot.to_group()])[0]


FORCED_FAULTS: dict[str, str] = {}
"""spec id -> the fault `with_variant` asked for: the renderer draws it whatever the
recipe's fault plan says (the spec itself carries no fault)."""


def with_variant(group: Group, variant: str) -> Group:
    """The group's first spec, under its own id, drawn with `variant` by `force_faults`."""
    spec = group.candidates[0].spec
    spec = dataclasses.replace(spec, spec_id=f"{spec.spec_id}~{variant}")
    FORCED_FAULTS[spec.spec_id] = variant
    return dataclasses.replace(group, candidates=[Candidate(spec=spec)])


def variant_of(candidate: Candidate) -> str:
    return FORCED_FAULTS[candidate.spec.spec_id]


def force_faults(stage: RenderStage) -> RenderStage:
    """Make a set-up render stage draw the faults `with_variant` asked for."""
    renderer = stage.renderer
    planned = renderer.fault_of
    renderer.fault_of = lambda spec: FORCED_FAULTS.get(spec.spec_id) or planned(spec)
    return stage


def annotate_and_filter(
    loaded: LoadedRecipe, groups: list[Group], render: bool = True
) -> list[Group]:
    stages = [build_stage(RenderStage, loaded)] if render else []
    stages += [*build_annotators(loaded), FilterStage(loaded.recipe.split_thresholds("train"))]
    for stage in stages:
        stage.setup()
        if isinstance(stage, RenderStage):
            force_faults(stage)
        groups = stage.process_batch(groups)
    return groups


RAY_EXECUTION = {
    "stages": {
        "prompt": {"cpus": 0.1},
        "render": {"cpus": 0.25},
        "image": {"cpus": 0.1},
        "ocr": {"cpus": 0.5},
        "quality": {"cpus": 0.1},
        "subject": {"cpus": 0.1},
        "phash": {"cpus": 0.1},
    }
}
"""Fractional CPUs: on a 2-core machine whole-CPU actors would starve Ray Data's read task."""

SMALL = {"image": {"long_side": 320}, "block_size": 3, "execution": RAY_EXECUTION}
"""A fast variant of the quickstart for runs that are repeated (crash tests, runner equality)."""


def run_command(recipe: Path, out: Path, limit: int) -> list[str]:
    """`datapipe run` as its own process, for tests that kill it or limit its resources."""
    return [
        sys.executable, "-m", "datapipe.cli", "run", str(recipe),
        "--out", str(out), "--limit", str(limit), "-q",
    ]  # fmt: skip
