"""PromptStage: planned group slots -> groups of PromptSpecs.

The template composer always decides the content (entity, style, layout, copy text,
seeds), so ids and copy never depend on a remote model. With the `openai` backend an
LLM then rewords each spec's image prompt; a reply that is malformed, fails its schema
or changes a required copy line is recorded as the candidate's prompt error (the
render stage then skips it and the filter rejects it), never used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from datapipe.backends.template_composer import TemplateComposer
from datapipe.io.layout import OutputLayout
from datapipe.recipe import PromptStageConfig
from datapipe.records import Candidate, Group
from datapipe.stages.base import Resources, Stage


@dataclass(frozen=True)
class PromptSettings:
    prompt: PromptStageConfig
    composer: TemplateComposer
    """Composes the specs from the recipe's generation settings and libraries."""
    prompts: Path
    """The prompts library folder, which holds the LLM's templates."""


class PromptStage(Stage):
    name = "prompt"
    resources: ClassVar[Resources] = Resources(cpus=0.25)
    batch_size: ClassVar[int] = 4
    produces: ClassVar[tuple[str, ...]] = ("prompt.ok",)

    config: PromptSettings

    def setup(self) -> None:
        config = self.config.prompt
        self.composer = self.config.composer
        self.rewriter = None
        if config.backend == "openai":
            from datapipe.backends.llm_openai import PromptRewriter

            cache = OutputLayout(self.out).cache("llm") if self.out else None
            self.rewriter = PromptRewriter(config.openai, cache, prompts_dir=self.config.prompts)
            self.rewriter.load()

    def process_batch(self, groups: list[Group]) -> list[Group]:
        for group in groups:
            if group.candidates:
                continue
            group.candidates = [Candidate(spec=spec) for spec in self.composer.compose(group)]
            for candidate in group.candidates:
                self._word(candidate)
        return groups

    def _word(self, candidate: Candidate) -> None:
        if self.rewriter is None:
            candidate.scores["prompt.ok"] = 1.0
            return
        result = self.rewriter.rewrite(candidate.spec)
        candidate.details["prompt"] = {
            "backend": "openai",
            "model": self.config.prompt.openai.model,
            "template_prompt": candidate.spec.prompt,
            "cached": result.cached,
            "attempts": result.attempts,
            "usage": result.usage,
            "error": result.error,
            "detail": result.detail,
        }
        if result.error:
            candidate.scores["prompt.ok"] = 0.0
            return
        candidate.spec.prompt = result.prompt
        if result.negative_prompt:
            candidate.spec.negative_prompt = result.negative_prompt
        candidate.scores["prompt.ok"] = 1.0

    def items(self, groups: list[Group]) -> int:
        return len(groups)
