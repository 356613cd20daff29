"""PromptStage: turns planned group slots into groups of PromptSpecs."""

from __future__ import annotations

from typing import ClassVar

from datapipe.backends.template_composer import TemplateComposer
from datapipe.records import Candidate, Group
from datapipe.stages.base import Resources, Stage


class PromptStage(Stage):
    name = "prompt"
    resources: ClassVar[Resources] = Resources(cpus=0.25)
    batch_size: ClassVar[int] = 4

    def setup(self) -> None:
        backend = self.recipe.stages.prompt.backend
        if backend != "template":
            raise ValueError(f"stages.prompt.backend: unknown backend {backend!r}")
        self.composer = TemplateComposer(self.loaded)

    def process_batch(self, groups: list[Group]) -> list[Group]:
        for group in groups:
            if group.candidates:
                continue
            group.candidates = [Candidate(spec=spec) for spec in self.composer.compose(group)]
        return groups

    def items(self, groups: list[Group]) -> int:
        return len(groups)
