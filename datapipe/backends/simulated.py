"""A stand-in for a GPU renderer with a fixed cost per image and no CPU to speak of.

It renders with the procedural renderer and sleeps until the fixed time has passed, so
a pipeline built around it can be measured against the renderer's bare loop (how much
of the "GPU" time the pipeline keeps busy) on a machine without a GPU.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from datapipe.backends.base import RenderResult
from datapipe.backends.procedural.renderer import ProceduralRenderer
from datapipe.libraries import Library
from datapipe.records import PromptSpec

if TYPE_CHECKING:
    from datapipe.recipe import FaultConfig


class FixedCostRenderer:
    def __init__(
        self,
        library: Library,
        seconds: float,
        faults: FaultConfig | None = None,
        compress_level: int = 1,
    ) -> None:
        self.inner = ProceduralRenderer(library, faults, compress_level)
        self.seconds = seconds
        self.version = f"simulated-{seconds:g}s+{self.inner.version}"

    def load(self) -> None:
        self.inner.load()

    def render_batch(self, specs: list[PromptSpec]) -> list[RenderResult]:
        return [self.render(spec) for spec in specs]

    def render(self, spec: PromptSpec) -> RenderResult:
        deadline = time.perf_counter() + self.seconds
        result = self.inner.render(spec)
        time.sleep(max(0.0, deadline - time.perf_counter()))
        return result
