"""RenderStage: specs in, candidate images out (and, offline, the renderer's truth aside).

The backend comes from the recipe: `procedural` (offline, knows its own text boxes and
subject mask, for grading only), `simulated` (procedural at a fixed cost, for pipeline
benchmarks) or `qwen_image` (diffusers on a GPU). A render that fails is recorded on its candidate
(the filter rejects it with a reason and the summary counts it); one bad spec never
stops a multi-day job. A spec whose prompt stage failed is not rendered at all: a GPU
second is never spent on a prompt that was already rejected. Timings are measured by
the runner per stage, never stored on a candidate: shards must be byte-identical.

The stage hands the renderer's pixels on unencoded (`Candidate.raw`); the image stage,
a CPU worker, encodes them with `encode_render`, so a GPU worker spends its time on
renders and not on PNG compression.

What a renderer knows of its own drawing (truth, mask, the fault it drew) never goes on
the candidate: the stage keeps it until the runner takes it (`take_truth`), and the
runner stores it apart (io/truth_store.py) for grading. So no later stage can read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from datapipe.backends.base import Renderer, RenderResult
from datapipe.images import encode_png, mask_to_png
from datapipe.io.truth_store import Graded
from datapipe.libraries import Library
from datapipe.recipe import RenderStageConfig
from datapipe.records import Candidate, Group, RawRender
from datapipe.stages.base import Resources, Stage


@dataclass(frozen=True)
class RenderSettings:
    render: RenderStageConfig
    library: Library
    """What the offline renderers draw from (their icons, fonts and palettes)."""


def make_renderer(settings: RenderSettings) -> Renderer:
    config = settings.render
    if config.backend == "qwen_image":
        from datapipe.backends.qwen_image import QwenImageRenderer

        return QwenImageRenderer(config.qwen_image)
    if config.backend == "simulated":
        from datapipe.backends.simulated import FixedCostRenderer

        return FixedCostRenderer(
            settings.library,
            config.simulated_seconds,
            config.faults,
            config.png_compress_level,
        )
    from datapipe.backends.procedural.renderer import ProceduralRenderer

    return ProceduralRenderer(settings.library, config.faults, config.png_compress_level)


class RenderStage(Stage):
    name = "render"
    resources: ClassVar[Resources] = Resources(cpus=1.0)
    batch_size: ClassVar[int] = 4
    produces: ClassVar[tuple[str, ...]] = ("render.ok",)

    config: RenderSettings

    def setup(self) -> None:
        self.renderer = make_renderer(self.config)
        self.renderer.load()
        self.graded: dict[str, Graded] = {}

    def take_truth(self, groups: list[Group]) -> dict[str, Graded]:
        """Hand the runner what the renderer knew of these groups' renders, and forget it."""
        keys = [c.key for g in groups for c in g.candidates]
        return {key: self.graded.pop(key) for key in keys if key in self.graded}

    def process_batch(self, groups: list[Group]) -> list[Group]:
        todo: list[Candidate] = []
        for group in groups:
            for candidate in group.candidates:
                if candidate.image or candidate.raw is not None or "render" in candidate.details:
                    continue
                prompt_error = candidate.details.get("prompt", {}).get("error")
                if prompt_error:
                    candidate.details["render"] = {"skipped": f"prompt rejected: {prompt_error}"}
                    candidate.scores["render.ok"] = 0.0
                    continue
                todo.append(candidate)
        if not todo:
            return groups
        try:
            results = self.renderer.render_batch([c.spec for c in todo])
        except Exception as exc:  # recorded as a rejection, see the module docstring
            for candidate in todo:
                candidate.details["render"] = {"error": f"{type(exc).__name__}: {exc}"}
                candidate.scores["render.ok"] = 0.0
            return groups
        for candidate, result in zip(todo, results, strict=True):
            self._record(candidate, result)
        return groups

    def _record(self, candidate: Candidate, result: RenderResult) -> None:
        spec = candidate.spec
        candidate.raw = RawRender(result.image, result.file)
        if result.truth is not None:
            mask = result.subject_mask
            self.graded[candidate.key] = Graded(
                result.truth, mask_to_png(mask) if mask is not None else None
            )
        candidate.scores["render.ok"] = 1.0
        candidate.render = {
            "backend": self.config.render.backend,
            "model": self.renderer.version,
            "seed": spec.seed,
            "width": spec.width,
            "height": spec.height,
        }


def encode_render(candidate: Candidate, compress_level: int) -> None:
    """Turn the render stage's raw pixels into the candidate's PNG bytes; a file the
    renderer wrote itself (possibly broken) is taken as it is."""
    raw = candidate.raw
    if raw is None:
        return
    candidate.image = raw.file if raw.file is not None else encode_png(raw.image, compress_level)
    candidate.raw = None
