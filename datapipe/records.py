"""The records that move through the pipeline.

The unit of work is a `Group`: the specs that must be rendered and judged together.
Stages add to it (specs, then renders, then scores, then verdicts, then samples) and
never remove anything, so every render and every reason survives to the output.
Scores live in one flat mapping per candidate (`stage.metric` -> number) rather than
one field per filter, so a new annotator never changes these types.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter

if TYPE_CHECKING:
    from PIL import Image

BoxInt = tuple[int, int, int, int]


@dataclass
class CopyLine:
    """A line of copy text that must appear on the poster, verbatim."""

    role: str
    text: str


@dataclass
class PromptSpec:
    spec_id: str
    group_id: str
    group_kind: str
    member: int
    language: str
    theme: str
    entity_id: str
    entity_name: str
    entity_description: str
    entity_shape: str
    entity_color: str
    style_id: str
    style_name: str
    layout_id: str
    aspect_ratio: str
    width: int
    height: int
    copy: list[CopyLine]
    prompt: str
    negative_prompt: str
    seed: int
    entity_detect: str = ""
    """What is drawn, in English, whatever the poster's language: the subject detector's
    prompt (the library's `detect`); empty in records written before it existed."""


@dataclass
class TextBox:
    role: str
    text: str
    box: BoxInt


@dataclass
class RenderTruth:
    """What the renderer knows it drew: the text it wrote where, the subject, the slots,
    and the fault it broke the render with on purpose ("good" for none).

    For grading only: it never rides on a `Candidate` (stages, task builders, verdicts
    and regen work from the pixels, as they must with a diffusion renderer). The runner
    stores it apart, next to the candidate store, for the fidelity benchmark and tests.
    """

    text_boxes: list[TextBox]
    subject_box: BoxInt | None
    layout_boxes: dict[str, BoxInt]
    fault: str = "good"
    text_fault: dict[str, Any] | None = None
    """The text fault drawn on purpose (text_faults.TextFault as a dict), for grading only."""
    pair_fault: str | None = None
    """A pair failure drawn into this render on purpose (a rescale twin with another
    subject, a layout twin with its elements swapped ...), for the pair checks' grading."""
    pair_with: str | None = None
    """For `copies_reference`: the spec id of the member this render copies."""


@dataclass
class Verdict:
    keep: bool
    reasons: list[str]
    details: dict[str, str] = field(default_factory=dict)


@dataclass
class RawRender:
    """A render's pixels as the renderer returned them, not yet encoded.

    Encoding PNG is CPU work: the render worker hands the pixels on and the image stage
    encodes them, so a GPU never waits on zlib. Never stored or sharded.
    """

    image: Image.Image
    file: bytes | None = None
    """The file as the renderer wrote it, when it wrote one itself (possibly broken)."""


@dataclass
class Candidate:
    spec: PromptSpec
    image: bytes = b""
    """Encoded PNG as the renderer produced it (possibly broken: the stages check)."""
    subject_mask: bytes | None = None
    """PNG, mode L, 255 on the subject; None when no backend produced one."""
    raw: RawRender | None = None
    """Between the render and the image stage only: the pixels `image` is encoded from."""
    render: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, float | None] = field(default_factory=dict)
    """`stage.metric` -> value; None means "not applicable here", never "not computed"."""
    details: dict[str, Any] = field(default_factory=dict)
    verdict: Verdict | None = None

    @property
    def key(self) -> str:
        return self.spec.spec_id

    @property
    def kept(self) -> bool:
        return self.verdict is not None and self.verdict.keep

    def metadata(self) -> dict[str, Any]:
        """Everything but the image bytes, as plain JSON-able data."""
        data = asdict(replace(self, image=b"", subject_mask=None, raw=None))
        for name in ("image", "subject_mask", "raw"):
            data.pop(name)
        return data


@dataclass
class Sample:
    """One training pair as it is written to a shard."""

    key: str
    task: str
    split: str
    language: str
    theme: str
    sources: list[bytes]
    target: bytes
    mask: bytes | None
    instruction: str
    meta: dict[str, Any]


@dataclass
class PairReject:
    """A pair a task builder could not make, with the reason (never dropped silently)."""

    task: str
    candidate_key: str
    reason: str
    detail: str
    scores: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Group:
    group_id: str
    kind: str
    index: int
    block: int
    language: str
    theme: str
    split: str = "train"
    task: str | None = None
    """Bench groups serve one task (one prompt per benchmark sample); None for train."""
    candidates: list[Candidate] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    pair_rejects: list[PairReject] = field(default_factory=list)
    api_usage: list[dict[str, Any]] = field(default_factory=list)
    """What a stage run at commit asked an API for this group (the bench's Gemini judge),
    one `{stage, attempts, cached, usage}` per reply (its HTTP requests, retries included;
    whether it came from the cache; its tokens), for the cost report. Candidate stages
    record theirs in `candidate.details[stage]` instead."""


_SPEC = TypeAdapter(PromptSpec)
TRUTH_ADAPTER = TypeAdapter(RenderTruth)


def candidate_from_metadata(
    data: dict[str, Any], image: bytes, subject_mask: bytes | None
) -> Candidate:
    """Rebuild a candidate from the candidate store (metadata JSON plus its images)."""
    verdict = data.get("verdict")
    return Candidate(
        spec=_SPEC.validate_python(data["spec"]),
        image=image,
        subject_mask=subject_mask,
        render=data.get("render", {}),
        scores=data.get("scores", {}),
        details=data.get("details", {}),
        verdict=Verdict(**verdict) if verdict else None,
    )
