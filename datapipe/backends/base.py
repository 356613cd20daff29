"""The interfaces a backend implements to plug into its stage.

A stage picks its backend from the recipe; the backend keeps its model (loaded in
`load()`, once per worker) and does the work; the stage turns results into scores and
details. Backends import their heavy packages inside `load()`, so a recipe that does
not use them never needs them installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from PIL import Image

from datapipe.records import PromptSpec, RenderTruth


@dataclass
class RenderResult:
    """What any renderer returns. Only a renderer that drew the poster itself knows its
    mask and text boxes; a diffusion renderer leaves them None and the annotators
    measure them. The mask and the truth are for grading only: the render stage hands
    them to the runner, never to the stages after it."""

    image: Image.Image
    subject_mask: np.ndarray | None
    truth: RenderTruth | None
    file: bytes | None = None
    """The encoded file, when the renderer wrote one itself (a broken one, say)."""


class Renderer(Protocol):
    version: str
    """Model id and version, recorded with every render."""

    def load(self) -> None: ...

    def render_batch(self, specs: list[PromptSpec]) -> list[RenderResult]:
        """One result per spec, in order; same seed and spec give the same pixels."""
        ...


@dataclass
class JudgeVerdict:
    """Any bench judge's verdict on one sample (the Gemini judge, the rule-based judge)."""

    suitable: bool | None
    """The judge's decision; None when there is no valid verdict (see `error`)."""
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, int] = field(default_factory=dict)
    """SCORE_KEYS -> 1..5; empty when there is no valid verdict."""
    error: str | None = None
    detail: str = ""
    attempts: int = 0
    """HTTP requests made for this verdict (retries included); 0 for a cache hit."""
    cached: bool = False
    usage: dict[str, int] = field(default_factory=dict)
    """prompt_tokens, completion_tokens, total_tokens summed over the paid replies."""

    @property
    def ok(self) -> bool:
        return self.error is None
