"""The stage interface every runner drives.

A stage is a small class: its own settings in (the stage registry picks them out of
the recipe; a stage never sees the rest of it), `setup()` to load models once per worker,
`process_batch(groups) -> groups` to do the work, and class attributes that declare
its resources and the scores it writes. Runners (local, Ray) never look inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from datapipe.images import BadImageError, load_rgb

if TYPE_CHECKING:
    from pathlib import Path

    from PIL import Image

    from datapipe.records import Candidate, Group


@dataclass(frozen=True)
class Resources:
    """What one worker of the stage holds; fractional GPUs let filters share a render GPU."""

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.cpus < 0 or self.gpus < 0:
            raise ValueError(f"resources cannot be negative: {self}")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"a fractional GPU share must be below 1, got {self.gpus}")


class Stage:
    """Base class. Subclasses set `name` and override `process_batch`."""

    name: ClassVar[str]
    resources: ClassVar[Resources] = Resources()
    batch_size: ClassVar[int] = 8
    """Groups per call. Under Ray each batch becomes one block downstream, so a batch
    larger than a pool's share of the work leaves that pool's workers idle."""
    produces: ClassVar[tuple[str, ...]] = ()
    """Score names (`stage.metric`) this stage writes; thresholds may only use these."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_abstract", False):
            return
        if not isinstance(cls.__dict__.get("name"), str):
            raise TypeError(f"{cls.__name__} must set its own class attribute `name = '...'`")
        if cls.process_batch is Stage.process_batch:
            raise TypeError(f"{cls.__name__} must override process_batch(self, groups)")
        for score in cls.produces:
            if not score.startswith(f"{cls.name}."):
                raise TypeError(
                    f"{cls.__name__}.produces: {score!r} must start with '{cls.name}.' "
                    "so that every score names the stage that wrote it"
                )

    def __init__(self, config: Any, out: Path | None = None) -> None:
        """Keep the settings only: models load in setup(), once per worker, never here.

        `config` is the stage's own part of the recipe (`datapipe.stages.registry` says
        which); it must pickle, as Ray hands it to each worker. `out` is the run's output
        directory, for stages that keep a cache there (LLM responses); stages used
        outside a run get None and keep nothing.
        """
        self.config = config
        self.out = out

    def setup(self) -> None:
        """Load models and open resources; called once per worker before any batch."""

    def process_batch(self, groups: list[Group]) -> list[Group]:
        raise NotImplementedError

    def teardown(self) -> None:
        """Release what setup() took."""

    def items(self, groups: list[Group]) -> int:
        """How many items a batch holds, for throughput counts."""
        return sum(len(g.candidates) for g in groups)


class CandidateStage(Stage):
    """An annotator: scores one candidate at a time and skips unreadable images.

    Unreadable images carry the image stage's scores and are rejected for them by the
    filter; annotating them would only add noise.
    """

    _abstract = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("_abstract", False) and cls.annotate is CandidateStage.annotate:
            raise TypeError(f"{cls.__name__} must override annotate(self, candidate, image)")

    def process_batch(self, groups: list[Group]) -> list[Group]:
        for group in groups:
            for candidate in group.candidates:
                if candidate.details.get("image", {}).get("error"):
                    continue
                try:
                    image = load_rgb(candidate.image)
                except BadImageError as fault:
                    candidate.details.setdefault("image", {})["error"] = str(fault)
                    continue
                self.annotate(candidate, image)
        return groups

    def annotate(self, candidate: Candidate, image: Image.Image) -> None:
        raise NotImplementedError
