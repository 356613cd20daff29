"""Run the candidate stages and the filter over hand-made groups."""

from __future__ import annotations

import dataclasses

from datapipe.plan import plan_groups
from datapipe.recipe import LoadedRecipe
from datapipe.records import Candidate, Group
from datapipe.stages.filter import FilterStage
from datapipe.stages.prompt import PromptStage
from datapipe.stages.registry import annotator_classes
from datapipe.stages.render import RenderStage


def first_group(loaded: LoadedRecipe, kind: str = "single") -> Group:
    slot = next(s for s in plan_groups(loaded) if s.kind == kind)
    stage = PromptStage(loaded)
    stage.setup()
    return stage.process_batch([slot.to_group()])[0]


def with_variant(group: Group, variant: str) -> Group:
    spec = dataclasses.replace(group.candidates[0].spec, variant=variant)
    return dataclasses.replace(group, candidates=[Candidate(spec=spec)])


def annotate_and_filter(
    loaded: LoadedRecipe, groups: list[Group], render: bool = True
) -> list[Group]:
    classes = ([RenderStage] if render else []) + annotator_classes(loaded.recipe) + [FilterStage]
    for cls in classes:
        stage = cls(loaded)
        stage.setup()
        groups = stage.process_batch(groups)
    return groups
