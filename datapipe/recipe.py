"""Recipes: the schema the YAML files in pipelines/ are validated into (typed, frozen).

A recipe is data: every count, ratio, size, backend choice, threshold and shard limit
lives in it, so a run is fully described by its file. This module is the schema only;
reading a file, resolving its libraries and checking its stages is `datapipe.loading`
(above the stages it checks), so every layer can import the schema without a circle.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

Language = Literal["zh", "en"]
Theme = Literal["products", "food", "events", "nature", "education", "entertainment"]
GroupKind = Literal["single", "rescale", "style", "layout"]
TaskName = Literal["extend", "fill", "rescale", "identity", "layout", "style"]
TextFaultKind = Literal[
    "wrong_text",
    "digit_changed",
    "lookalike",
    "malformed_glyph",
    "extra_line",
    "duplicated_line",
]
"""The faults drawn into the copy text (backends/procedural/text_faults.py)."""
FaultKind = Literal[
    TextFaultKind,
    "missing_text",
    "no_subject",
    "collapsed",
    "blank",
    "truncated",
]
PairFaultKind = Literal[
    "other_subject",
    "text_changed",
    "colours_changed",
    "moved",
    "copies_reference",
    "other_palette",
    "other_motif",
]
MaskKind = Literal["subject", "text", "freeform"]

ALL_THEMES: tuple[str, ...] = Theme.__args__
ALL_TASKS: tuple[str, ...] = TaskName.__args__
GROUP_KINDS: tuple[str, ...] = GroupKind.__args__

_RATIO = re.compile(r"^(\d{1,2}):(\d{1,2})$")
_REASON = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?i?B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}
_SIZE_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30}

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt threshold must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class Libraries(Strict):
    """Library folders, relative to the recipe file."""

    entities: Path = Path("../entity_libraries")
    """Entity libraries: one YAML file per theme (entity_libraries/)."""
    styles: Path = Path("../style_libraries")
    """Style and layout libraries (styles.yaml, layouts.yaml in style_libraries/)."""
    prompts: Path = Path("../prompts")
    """Templates of poster prompts, copy, instructions, LLM rewrites and the judge (prompts/)."""

    @field_validator("entities", "styles", "prompts")
    @classmethod
    def _plain(cls, value: Path) -> Path:
        text = str(value)
        if not text.isprintable() or len(text) > 4096:
            raise ValueError("a folder path must be printable text (no NUL, newline, control)")
        return value


class GroupCounts(Strict):
    """How many groups of each kind the run renders (`--limit` renders a prefix of them)."""

    single: int = Field(0, ge=0, le=10_000_000)
    """Single-poster groups: one render each."""
    rescale: int = Field(0, ge=0, le=10_000_000)
    """Rescale groups: one spec and seed rendered at two aspect ratios (rescale pairs)."""
    style: int = Field(0, ge=0, le=10_000_000)
    """Style groups: `group_size.style` renders of one style, each another entity (style pairs)."""
    layout: int = Field(0, ge=0, le=10_000_000)
    """Layout groups: `group_size.layout` renders of one layout, each another entity, copy and
    style (layout pairs)."""

    @model_validator(mode="after")
    def _not_empty(self) -> GroupCounts:
        if sum(self.model_dump().values()) == 0:
            raise ValueError(
                "every group count is 0: set at least one of single, rescale, style, layout"
            )
        return self


class GroupSizes(Strict):
    """Members per style and layout group (a rescale group is always two renders)."""

    style: int = Field(3, ge=2, le=8)
    """Renders per style group."""
    layout: int = Field(3, ge=2, le=8)
    """Renders per layout group."""


class ImageConfig(Strict):
    """The size each poster is rendered at."""

    long_side: int = Field(512, ge=64, le=4096)
    """Pixels of a render's longer side, for ratios not listed in `sizes`."""
    multiple_of: int = Field(16, ge=1, le=128)
    """Both sides are rounded to a multiple of this many pixels (a model's patch size)."""
    aspect_ratios: list[str] = Field(default_factory=lambda: ["3:4", "1:1", "4:3"], min_length=1)
    """W:H ratios a poster is drawn at, one picked per render (a rescale group takes two
    different ones)."""
    sizes: dict[
        Annotated[str, Field(pattern=r"^\d{1,2}:\d{1,2}$")],
        tuple[Annotated[int, Field(ge=16, le=4096)], Annotated[int, Field(ge=16, le=4096)]],
    ] = Field(
        default_factory=dict,
        description="exact (width, height) per ratio, e.g. a model's official sizes; "
        "ratios not listed are derived from long_side",
    )

    @field_validator("aspect_ratios")
    @classmethod
    def _ratios(cls, value: list[str]) -> list[str]:
        for ratio in value:
            match = _RATIO.match(ratio)
            if not match or 0 in (int(match[1]), int(match[2])):
                raise ValueError(
                    f"aspect ratio {ratio!r} is not W:H with positive integers, e.g. '3:4'"
                )
            w, h = int(match[1]), int(match[2])
            if max(w / h, h / w) > 4:
                raise ValueError(f"aspect ratio {ratio!r} is more extreme than 4:1")
        if len(set(value)) != len(value):
            raise ValueError("aspect ratios repeat")
        return value

    def size_for(self, ratio: str) -> tuple[int, int]:
        """(width, height): from `sizes`, else the long side fixed and both sides a multiple
        of `multiple_of`."""
        if ratio in self.sizes:
            return self.sizes[ratio]
        w, h = (int(x) for x in ratio.split(":"))
        scale = self.long_side / max(w, h)
        step = self.multiple_of
        return (
            max(step, round(w * scale / step) * step),
            max(step, round(h * scale / step) * step),
        )


class ApiConfig(Strict):
    """An HTTP API: the key is read from the named environment variable, never the recipe."""

    base_url: str | None = Field(None, description="None: the provider's default endpoint")
    model: str
    """Model name sent with every request."""
    api_key_env: str = Field(pattern=r"^[A-Z_][A-Z0-9_]*$")
    """Name of the environment variable that holds the API key."""
    timeout_s: float = Field(60.0, gt=0, le=3600)
    """Seconds one request may take before it counts as timed out (and is retried)."""
    max_retries: int = Field(4, ge=0, le=20)
    """Retries after the first attempt, for rate limits (429), server errors, timeouts and lost
    connections."""
    backoff_s: float = Field(1.0, ge=0, le=600, description="first retry wait; doubles")
    requests_per_minute: float = Field(60.0, gt=0)
    """Request rate cap of each client, one per worker (a token bucket)."""
    temperature: float = Field(0.7, ge=0, le=2)
    """Sampling temperature sent with every request."""


class OpenAIConfig(ApiConfig):
    """An OpenAI-compatible chat API (GPT, or Qwen3 served by vLLM through base_url)."""

    model: str = "gpt-4.1-mini"
    """Model name sent with every request (for vLLM, the served model's name)."""
    api_key_env: str = Field("OPENAI_API_KEY", pattern=r"^[A-Z_][A-Z0-9_]*$")
    """Name of the environment variable that holds the API key."""
    enable_thinking: bool | None = Field(
        None,
        description="Qwen3 behind vLLM: sent as chat_template_kwargs.enable_thinking; leave "
        "unset for APIs that do not take it (OpenAI's)",
    )


class GeminiConfig(ApiConfig):
    """Google's Gemini API through google-genai (the bench judge)."""

    model: str = "gemini-2.5-flash"
    """Gemini model name."""
    api_key_env: str = Field("GEMINI_API_KEY", pattern=r"^[A-Z_][A-Z0-9_]*$")
    """Name of the environment variable that holds the API key."""
    temperature: float = Field(0.0, ge=0, le=2)
    """Sampling temperature (0: the most repeatable verdicts)."""
    max_image_side: int = Field(
        1024,
        ge=64,
        le=8192,
        description="images are downscaled to this long side before they are sent inline",
    )


class PromptStageConfig(Strict):
    """How each group's prompt specs are worded."""

    backend: Literal["template", "openai"] = "template"
    """template: the prompts/ templates fill each spec (offline); openai: an OpenAI-compatible
    chat model rewrites the wording."""
    openai: OpenAIConfig | None = None
    """The chat API, for backend openai."""

    @model_validator(mode="after")
    def _needs(self) -> PromptStageConfig:
        if self.backend == "openai" and self.openai is None:
            raise ValueError("backend openai needs an `openai:` section (model, base_url ...)")
        return self


class FaultConfig(Strict):
    """Deliberately broken renders, so the filters are seen to work on every run."""

    rate: Fraction = 0.0
    """Share of procedural renders drawn with one fault from `kinds` (0: none)."""
    kinds: list[FaultKind] = Field(
        default_factory=lambda: ["wrong_text", "missing_text", "no_subject", "collapsed"]
    )
    """Faults to draw, picked evenly: broken or missing text, no subject, a collapsed layout, a
    blank or truncated image."""
    pair_rate: Fraction = Field(
        0.0, description="share of rescale, layout and style groups drawn with a pair failure"
    )
    pair_kinds: list[PairFaultKind] | None = Field(
        None, description="which pair failures (None: every kind the group's kind has)"
    )

    @model_validator(mode="after")
    def _kinds(self) -> FaultConfig:
        if self.rate > 0 and not self.kinds:
            raise ValueError("kinds: a fault rate above 0 needs at least one fault kind")
        return self


class LoraConfig(Strict):
    """A few-step distillation LoRA such as Qwen-Image-Lightning."""

    path: str = Field(description="local directory or file of the LoRA weights")
    weight_name: str | None = None
    """The weights file inside `path` when it is a folder (e.g. the .safetensors file to load)."""
    steps: int = Field(8, ge=1, le=100)
    """Denoising steps with the LoRA (replaces qwen_image.steps)."""
    true_cfg_scale: float = Field(1.0, ge=1.0, le=20)
    """Guidance with the LoRA (replaces qwen_image.true_cfg_scale; 1: no negative prompt pass)."""


class QwenImageConfig(Strict):
    """Qwen-Image through diffusers on a GPU; weights from a local folder, never downloaded."""

    model: str = Field(description="local directory of a diffusers QwenImagePipeline")
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    """Torch dtype the pipeline's weights are loaded in."""
    device: str = "cuda"
    """Torch device to render on (cuda: the GPU Ray assigned the worker)."""
    steps: int = Field(50, ge=1, le=200)
    """Denoising steps per render (without a LoRA)."""
    true_cfg_scale: float = Field(4.0, ge=1.0, le=20, description="> 1 needs a negative prompt")
    batch_size: int = Field(1, ge=1, le=64, description="same-size specs rendered together")
    cpu_offload: bool = False
    """diffusers model CPU offload: each part is moved to the GPU only while it runs (less GPU
    memory, slower, needs CUDA and host memory for the weights)."""
    lora: LoraConfig | None = None
    """A few-step LoRA loaded onto the pipeline; None: the full model's steps."""


class RenderStageConfig(Strict):
    """How posters are rendered."""

    backend: Literal["procedural", "simulated", "qwen_image"] = Field(
        "procedural",
        description="simulated: the procedural renderer padded to a fixed cost per image, "
        "to measure the pipeline around a GPU render without a GPU",
    )
    simulated_seconds: float = Field(0.5, gt=0, le=600)
    """backend simulated: seconds each render is padded to."""
    qwen_image: QwenImageConfig | None = None
    """Qwen-Image's settings, for backend qwen_image."""
    faults: FaultConfig = FaultConfig()
    png_compress_level: int = Field(1, ge=0, le=9)
    """zlib level of the PNG each render is stored as (0-9: higher is smaller and slower)."""

    @model_validator(mode="after")
    def _needs(self) -> RenderStageConfig:
        if self.backend == "qwen_image" and self.qwen_image is None:
            raise ValueError("backend qwen_image needs a `qwen_image:` section (model path ...)")
        return self


class PaddleOcrConfig(Strict):
    """PaddleOCR 3.x, run as a worker process by the python of its own virtualenv: paddle
    pins numpy and OpenCV builds that conflict with torch's in one environment."""

    python: str = Field(description="python executable of the virtualenv holding paddleocr")
    det_model_dir: str = Field(description="local text detection model directory")
    det_model_name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,80}$",
        description="the model in det_model_dir (its inference.yml Global.model_name)",
    )
    rec_model_dir: str = Field(description="local text recognition model directory")
    rec_model_name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]{1,80}$",
        description="the model in rec_model_dir (its inference.yml Global.model_name)",
    )
    device: str = Field("cpu", pattern=r"^(cpu|gpu(:[0-9]{1,2})?)$")
    """Device PaddleOCR runs on: cpu, gpu or gpu:N."""
    enable_mkldnn: bool | None = Field(
        None, description="oneDNN on CPU; None: PaddleOCR's default (on)"
    )
    timeout_s: float = Field(
        60.0, gt=0, le=3600, description="per image; a worker that takes longer is restarted"
    )
    startup_timeout_s: float = Field(
        300.0, gt=0, le=3600, description="to import paddle and load both models"
    )


class OcrStageConfig(Strict):
    """Reading each render's text, checked line by line against the copy it was asked for."""

    backend: Literal["rapidocr", "paddleocr"] = "rapidocr"
    """rapidocr: PP-OCR models shipped in its wheel, on the CPU (offline); paddleocr: PaddleOCR
    3.x in its own virtualenv."""
    paddleocr: PaddleOcrConfig | None = None
    """PaddleOCR's settings, for backend paddleocr."""
    threads: int = Field(0, ge=0, le=64, description="0: let the backend decide")
    match_floor: Fraction = Field(0.5, description="below this NED an expected line is missing")
    min_confidence: Fraction = 0.5
    """OCR lines read below this confidence are dropped before the copy is matched."""
    unexpected_confidence: Fraction = Field(
        0.9,
        description="unrequested text read at least this sure counts as unexpected (a "
        "drawn subject read as 'SSS' at 0.6 does not; an added line reads at 0.94 or more)",
    )
    det_limit_side_len: int = Field(
        480, ge=64, le=4096, description="text detector input size; see det_limit_type"
    )
    det_limit_type: Literal["max", "min"] = Field(
        "min",
        description="min: scale up until the short side is at least the limit (a larger image "
        "is detected at full size); max: scale down until the long side is at most the limit",
    )

    @model_validator(mode="after")
    def _needs(self) -> OcrStageConfig:
        if self.backend == "paddleocr" and self.paddleocr is None:
            raise ValueError(
                "backend paddleocr needs a `paddleocr:` section (python, det_model_dir ...)"
            )
        return self


class ToggleStageConfig(Strict):
    """A stage whose only setting is whether it runs."""

    enabled: bool = True
    """Whether the stage runs; without it its scores are absent and a threshold on them is
    refused at load."""


class ImageStageConfig(Strict):
    """The image checks guard every later stage (a render that does not decode has nothing
    to read), so they cannot be switched off; `enabled` is accepted only as true."""

    enabled: bool = True
    """Always true: `false` is refused at load rather than ignored."""

    @field_validator("enabled")
    @classmethod
    def _always(cls, value: bool) -> bool:
        if not value:
            raise ValueError(
                "the image checks always run: every later stage reads the decoded image "
                "(remove stages.image.enabled, or set it to true)"
            )
        return value


DETECTOR_BOX_THRESHOLDS: dict[str, float] = {"grounding_dino": 0.3, "owlv2": 0.1}
"""Default box floors: Grounding DINO's authors use 0.35 (box) / 0.25 (text); OWLv2's
examples in transformers use 0.1."""


class Sam2Config(Strict):
    """A text-grounded detector finds the subject box; SAM-2 refines it into a mask."""

    config: str = Field(
        "configs/sam2.1/sam2.1_hiera_l.yaml",
        pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]*[A-Za-z0-9_-])*\.yaml$",
        description="a config packaged with sam2 (relative; its `_target_`s are code)",
    )
    checkpoint: str = Field(description="local SAM-2 checkpoint (.pt)")
    detector: str = Field(description="local directory of a transformers zero-shot detector")
    detector_kind: Literal["owlv2", "grounding_dino"] = "grounding_dino"
    """The detector family in `detector` (its transformers class; also sets the default
    box_threshold)."""
    box_threshold: Fraction = Field(
        None, description="detector score floor for a box; unset: the detector kind's default"
    )
    max_boxes: int = Field(
        8, ge=1, le=64, description="boxes above the floor that are segmented (plural subjects)"
    )
    device: str = "cuda"
    """Torch device of the detector and SAM-2 (cuda: the GPU Ray assigned the worker)."""
    overrides: list[str] = Field(
        default_factory=list, description="extra hydra overrides for the SAM-2 config"
    )

    @model_validator(mode="before")
    @classmethod
    def _kind_threshold(cls, data: Any) -> Any:
        """OWLv2's sigmoid scores run far below Grounding DINO's: one floor cannot serve both."""
        if isinstance(data, dict) and data.get("box_threshold") is None:
            kind = data.get("detector_kind", "grounding_dino")
            if kind in DETECTOR_BOX_THRESHOLDS:
                data = {**data, "box_threshold": DETECTOR_BOX_THRESHOLDS[kind]}
        return data

    @field_validator("overrides")
    @classmethod
    def _plain_overrides(cls, value: list[str]) -> list[str]:
        """Hydra instantiates `_target_` classes and resolves `${...}`: from a recipe, that
        would be code execution (or reading the environment). Values only."""
        for item in value:
            if not item.isprintable() or re.search(r"_target_|_partial_|_args_|\$\{", item):
                raise ValueError(
                    f"override {item!r} may set values only (no _target_, _partial_, "
                    "_args_ or ${...} interpolation)"
                )
        return value


class SubjectStageConfig(Strict):
    """Finding the subject's mask in each render (`subject.*` scores)."""

    backend: Literal["pixels", "sam2"] = Field(
        "pixels",
        description="pixels: found from the image alone, on the CPU (offline); "
        "sam2: a text-grounded detector's box refined by SAM-2",
    )
    sam2: Sam2Config | None = None
    """The detector and SAM-2's settings, for backend sam2."""

    @model_validator(mode="after")
    def _needs(self) -> SubjectStageConfig:
        if self.backend == "sam2" and self.sam2 is None:
            raise ValueError("backend sam2 needs a `sam2:` section (checkpoint, detector ...)")
        return self


class ClipStageConfig(Strict):
    """Image-text and image-image similarity with open_clip; off in the offline default."""

    enabled: bool = False
    """Run the CLIP stage (image-text and image-image similarity scores); needs local weights."""
    model: str = Field(
        "ViT-L-14",
        description="local-dir:/path (an open_clip hub repository's files) or an architecture",
    )
    weights: str | None = Field(None, description="with an architecture: a local checkpoint")
    pretrained_tag: str | None = Field(
        None, description="with weights: the open_clip tag the file holds (its config)"
    )
    device: str = "cuda"
    """Torch device of the CLIP model (cuda: the GPU Ray assigned the worker)."""
    batch_size: int = Field(64, ge=1, le=4096)
    """Images or texts per forward pass."""


class StagesConfig(Strict):
    """Each stage's backend and settings, in pipeline order."""

    prompt: PromptStageConfig = PromptStageConfig()
    """Wording of each render's prompt spec."""
    render: RenderStageConfig = RenderStageConfig()
    """The renderer."""
    image: ImageStageConfig = ImageStageConfig()
    """Decode, mode and size checks of every render (`image.*` scores); always run."""
    ocr: OcrStageConfig = OcrStageConfig()
    """Text read from each render (`ocr.*` scores)."""
    quality: ToggleStageConfig = ToggleStageConfig()
    """Contrast, colourfulness, detail and extent of each render (`quality.*` scores)."""
    subject: SubjectStageConfig = SubjectStageConfig()
    """The subject's mask and box (`subject.*` scores)."""
    phash: ToggleStageConfig = ToggleStageConfig()
    """Perceptual hash of each render: near-duplicate checks and the style task need it."""
    clip: ClipStageConfig = ClipStageConfig()
    """CLIP similarities (`clip.*` scores); off by default."""


class Rule(Strict):
    """One threshold: a candidate whose score is outside [min, max] gets the rule's reason."""

    score: str = Field(pattern=r"^[a-z_]+\.[a-z0-9_]+$")
    """The stored score the rule reads, `stage.name` (e.g. subject.area)."""
    min: float | None = Field(None, allow_inf_nan=False)
    """Lowest value kept; None: no lower bound."""
    max: float | None = Field(None, allow_inf_nan=False)
    """Highest value kept; None: no upper bound."""

    @model_validator(mode="after")
    def _bounded(self) -> Rule:
        if self.min is None and self.max is None:
            raise ValueError("a rule needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class ExtendConfig(Strict):
    """Outpainting pairs: a crop that holds the subject -> the full poster."""

    enabled: bool = True
    """Build this task's pairs."""
    area: tuple[Fraction, Fraction] = (0.4, 0.8)
    """Share of the poster's area the crop covers: drawn between [low, high]."""
    modes: list[Literal["canvas", "crop"]] = Field(
        default_factory=lambda: ["canvas", "crop"], min_length=1
    )
    """canvas: the crop pasted on a blank canvas of the target size; crop: the crop as is, the
    target size in the instruction. One is picked per sample."""
    change_aspect: Fraction = Field(0.5, description="share of crops whose aspect ratio differs")

    @field_validator("area")
    @classmethod
    def _area(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.05 <= value[0] <= value[1] < 1.0:
            raise ValueError("area must be [low, high] with 0.05 <= low <= high < 1")
        return value


class FillConfig(Strict):
    """Inpainting pairs: the poster with a masked region blanked -> the full poster."""

    enabled: bool = True
    """Build this task's pairs."""
    mask_kinds: list[MaskKind] = Field(
        default_factory=lambda: ["subject", "text", "freeform"], min_length=1
    )
    """Mask kinds tried in a random order per sample, the first that applies used: the subject, a
    text block, a free-form stroke."""
    dilate_px: int = Field(4, ge=0, le=64)
    """Pixels the subject and text masks are grown by, so no edge of what they cover is left."""
    blank_value: int = Field(255, ge=0, le=255)
    """Grey level (0-255) the masked pixels of the source are set to."""


class RescaleConfig(Strict):
    """The same poster at two aspect ratios, kept when text, subject and colours agree."""

    enabled: bool = True
    """Build this task's pairs."""
    min_text_match: Fraction = 0.9
    """Lowest OCR text similarity (NED) of any copy line between the two ratios
    (`pair.text_match`); below it: rescale_text_mismatch."""
    min_color_similarity: Fraction = 0.6
    """Lowest colour histogram intersection of the two posters (`pair.color_similarity`); below
    it: rescale_color_mismatch."""
    min_clip_similarity: Fraction | None = Field(
        None, description="image-image CLIP cosine; needs stages.clip (None: not checked)"
    )
    min_subject_similarity: Fraction = Field(
        0.7,
        description="the masked subject crops' descriptor similarity (tasks/subjects.py): "
        "twins of one subject score >= 0.92, another subject <= 0.54 (fidelity benchmark)",
    )
    min_subject_clip_similarity: Fraction = Field(
        0.8, description="the same, as a CLIP cosine of the crops, where the clip stage ran"
    )


class IdentityConfig(Strict):
    """Subject-driven pairs: the subject cut out onto a plain ground -> its poster."""

    enabled: bool = True
    """Build this task's pairs."""
    background: str = Field("#FFFFFF", pattern=r"^#[0-9A-Fa-f]{6}$")
    """Colour (#RRGGBB) of the plain ground the subject is cut out onto."""
    padding: Fraction = 0.08
    """Margin around the cut-out subject, as a share of its box's longer side."""


class LayoutConfig(Strict):
    """Pairs of a layout group: a reference poster -> a poster on its layout."""

    enabled: bool = True
    """Build this task's pairs."""
    min_layout_match: Fraction = Field(
        0.7,
        description="share of the target's text lines and subject placed where the "
        "reference's lines of the same role and subject were detected",
    )
    tolerance: Fraction = Field(
        0.08, description="how far (share of the poster's side) an element may sit off its slot"
    )
    max_subject_similarity: Fraction = Field(
        0.8, description="above this, the target shows the reference's subject (descriptor)"
    )
    max_subject_clip_similarity: Fraction = Field(
        0.95, description="the same, as a CLIP cosine of the subject crops"
    )


class StyleConfig(Strict):
    """Pairs of a style group: a reference poster -> another poster in its style."""

    enabled: bool = True
    """Build this task's pairs."""
    min_color_similarity: Fraction = 0.5
    """Lowest colour histogram intersection of reference and target (`pair.color_similarity`);
    below it: style_color_mismatch."""
    min_phash_distance: int = Field(6, ge=0, le=64)
    """Fewest differing bits of the two 64-bit perceptual hashes; closer is a near-copy:
    style_near_duplicate."""
    max_clip_similarity: Fraction | None = Field(
        None, description="image-image CLIP cosine above which the pair is a near-copy"
    )
    min_motif_similarity: Fraction = Field(
        0.0, description="the grounds' texture: edge density and directions (tasks/style.py)"
    )
    max_subject_similarity: Fraction = Field(
        0.8, description="above this, the target shows the reference's subject (descriptor)"
    )
    max_subject_clip_similarity: Fraction = Field(
        0.95, description="the same, as a CLIP cosine of the subject crops"
    )


class TasksConfig(Strict):
    """Each task's switch and pair settings (`bench.task_settings` may replace them for the
    bench)."""

    extend: ExtendConfig = ExtendConfig()
    """Outpainting."""
    fill: FillConfig = FillConfig()
    """Inpainting."""
    rescale: RescaleConfig = RescaleConfig()
    """Aspect ratio change."""
    identity: IdentityConfig = IdentityConfig()
    """Subject-driven creation."""
    layout: LayoutConfig = LayoutConfig()
    """Layout-driven creation."""
    style: StyleConfig = StyleConfig()
    """Style-driven creation."""

    def enabled(self) -> list[str]:
        return [name for name in ALL_TASKS if getattr(self, name).enabled]


class ShardConfig(Strict):
    """WebDataset shard limits: a task's shard closes at whichever comes first."""

    max_samples: int = Field(1000, ge=1, le=1_000_000)
    """Samples per shard."""
    max_bytes: int = Field(1_000_000_000, ge=1_000_000)
    """Bytes per shard tar: an integer or a size such as 512MB or 1GiB."""

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _bytes(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _SIZE.match(value)
            unit = (match[2] or "").upper() if match else None
            if not match or unit not in _SIZE_UNITS:
                raise ValueError(f"{value!r} is not a size such as 512MB or 1GiB")
            return int(float(match[1]) * _SIZE_UNITS[unit])
        return value


class StageExecution(Strict):
    """How the Ray runner runs one stage; unset fields keep the stage's declared resources."""

    cpus: float | None = Field(None, ge=0, le=256)
    """CPUs each worker holds; set, the pool is pinned (never resized to fit a cluster); None:
    the stage's declared share, fitted to the cluster."""
    gpus: float | None = Field(None, ge=0, le=16)
    """GPU share each worker holds (below 1: actors share a GPU); None: the stage's declared
    share."""
    workers: int = Field(1, ge=1, le=4096)
    """Actors in the pool; GPU pools start at full size, so all their GPUs are needed at once."""
    batch_size: int | None = Field(None, ge=1, le=4096, description="groups per batch")
    resources: dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]] = Field(
        default_factory=dict, description="custom Ray resources each worker holds"
    )


class BudgetConfig(Strict):
    """Caps on what an output may spend, all of its invocations together. Before each block
    is rendered the run adds the block's renders at the cost per render measured so far
    (the `costs.priors` before anything is measured); a block that would pass a cap is not
    started: the run stops after the last committed block with exit status 4, and a rerun
    with a larger cap resumes. None: no cap."""

    max_renders: int | None = Field(None, ge=0, description="renders")
    max_gpu_hours: float | None = Field(None, ge=0, description="GPU-hours of every GPU stage")
    max_usd: float | None = Field(None, ge=0, description="USD at the recipe's `costs` prices")
    max_api_calls: int | None = Field(None, ge=0, description="prompt LLM and judge API calls")


class ExecutionConfig(Strict):
    """How a run executes: the Ray runner's actor pools and windows, and the budget caps both
    runners keep."""

    stages: dict[str, StageExecution] = Field(default_factory=dict)
    """Per stage name (prompt, render, ocr ...): how the Ray runner sizes its actor pool."""
    budget: BudgetConfig = BudgetConfig()
    window_groups: int | None = Field(
        None,
        ge=1,
        description="Ray runner: feed a phase's groups to the pools in windows of about this "
        "many (whole blocks), one Ray dataset each, restarting the pools in between. Ray Data "
        "keeps ~25 KB on the driver for every group a dataset has seen; a window bounds that. "
        "None: the whole phase in one dataset",
    )


class NearDuplicateConfig(Strict):
    """Renders of different groups whose perceptual hashes are this close are one image
    twice: the later one is rejected (`near_duplicate`), the first kept."""

    max_distance: int | None = Field(
        2,
        ge=0,
        le=32,
        description="64-bit pHash Hamming distance; None: not checked. Calibrate per "
        "renderer: on the procedural posters 2 bits flag 1.7% of renders, 6 bits 19%",
    )


JudgeScore = Literal["instruction_following", "visual_quality", "text_accuracy", "task_fit"]
JUDGE_SCORES: tuple[str, ...] = JudgeScore.__args__


class JudgeBand(Strict):
    """Maps one stored score to the judge's 1-5 scale: 1 below the first cut, 5 at or
    above the last. `score` names a candidate score (`ocr.min_found_ned`, the target's)
    or a pair score (`pair.layout_match`); `tasks` limits the band to some tasks."""

    score: str = Field(pattern=r"^[a-z_]+\.[a-z0-9_]+$")
    """The stored score the band reads."""
    cuts: tuple[float, float, float, float]
    """The values needed for a 2, 3, 4 and 5 (ascending)."""
    tasks: list[TaskName] | None = None
    """Tasks the band applies to; None: every task."""

    @field_validator("cuts")
    @classmethod
    def _ascending(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(value):
            raise ValueError("cuts must be ascending (the scores needed for 2, 3, 4 and 5)")
        return value


def _default_bands() -> dict[str, list[JudgeBand]]:
    return {
        "text_accuracy": [JudgeBand(score="ocr.min_found_ned", cuts=(0.8, 0.9, 0.95, 0.99))],
        "visual_quality": [JudgeBand(score="quality.contrast", cuts=(0.2, 0.35, 0.5, 0.65))],
        "task_fit": [
            JudgeBand(score="subject.area", cuts=(0.01, 0.02, 0.03, 0.05)),
            JudgeBand(score="pair.layout_match", cuts=(0.6, 0.7, 0.8, 0.9), tasks=["layout"]),
            JudgeBand(score="pair.text_match", cuts=(0.8, 0.9, 0.95, 0.99), tasks=["rescale"]),
            JudgeBand(score="pair.color_similarity", cuts=(0.3, 0.4, 0.5, 0.6), tasks=["style"]),
        ],
    }


class JudgeConfig(Strict):
    """The benchmark judge. `rules` scores a sample from its stored scores (offline);
    `gemini` asks a vision model. Either way the sample passes when the judge calls it
    suitable and every score meets `min_scores`."""

    backend: Literal["rules", "gemini"] = "rules"
    """rules: from the stored scores (offline); gemini: a vision model looks at the pair."""
    bands: dict[JudgeScore, list[JudgeBand]] = Field(default_factory=_default_bands)
    """rules judge: per judge score, the bands that set it (the lowest band reached wins)."""
    min_scores: dict[JudgeScore, Annotated[int, Field(ge=1, le=5)]] = Field(
        default_factory=lambda: {"text_accuracy": 4, "visual_quality": 3, "task_fit": 3}
    )
    """The least each judge score (1-5) must be for a sample to pass."""
    gemini: GeminiConfig | None = None
    """Gemini's settings, for backend gemini."""

    @model_validator(mode="after")
    def _needs(self) -> JudgeConfig:
        if self.backend == "gemini" and self.gemini is None:
            raise ValueError("backend gemini needs a `gemini:` section (model, api_key_env ...)")
        return self


class OversampleConfig(Strict):
    """How many groups to render per round for a quota still short: the shortfall over
    the acceptance rate measured so far (this value before anything is measured), times
    `margin`; a quota is given up after `max_rounds` rounds or `max_groups_per_sample`
    groups per sample asked for, and reported with its rejection reasons."""

    initial_acceptance: float = Field(0.7, gt=0, le=1)
    """Share of a quota's groups assumed to give a sample before it has measured its own."""
    margin: float = Field(1.2, ge=1, le=10)
    """Factor on the groups a round renders for a short quota."""
    min_measured: int = Field(
        4, ge=1, le=1000, description="groups a quota needs before its own rate is used"
    )
    max_rounds: int = Field(8, ge=1, le=100)
    """Rounds after which a quota still short is given up."""
    max_groups_per_sample: float = Field(6.0, ge=1, le=1000)
    """Groups rendered per sample asked for, after which a quota is given up."""


class BenchConfig(Strict):
    """The benchmark split: per task, `quotas[language]` samples spread evenly over the
    recipe's themes, each from its own group (one prompt per sample), filtered harder
    than training data and judged; groups, entity x style pairs and images are disjoint
    from the train split of the same output."""

    quotas: dict[Language, Annotated[int, Field(ge=0, le=1_000_000)]] = Field(
        default_factory=lambda: {"zh": 90, "en": 80}, min_length=1
    )
    """Samples per task for each language, spread evenly over the recipe's themes."""
    tasks: list[TaskName] | None = Field(None, description="None: every enabled task")
    pair_share: float = Field(
        0.2, gt=0, lt=1, description="share of entity x style pairs reserved for the bench"
    )
    thresholds: dict[str, Rule] = Field(
        default_factory=dict, description="added to the recipe's thresholds (same name: replaced)"
    )
    task_settings: TasksConfig | None = Field(None, description="None: the recipe's `tasks`")
    require_masks: list[TaskName] = Field(
        default_factory=lambda: ["fill", "identity"],
        description="tasks whose bench samples need a subject mask (tasks that use one)",
    )
    near_duplicate_distance: int | None = Field(
        None, ge=0, le=32, description="None: the recipe's near_duplicates.max_distance"
    )
    judge: JudgeConfig = JudgeConfig()
    oversample: OversampleConfig = OversampleConfig()

    @field_validator("thresholds")
    @classmethod
    def _reasons(cls, value: dict[str, Rule]) -> dict[str, Rule]:
        return _check_reasons(value)


class TargetsConfig(Strict):
    """Train pairs wanted per task: the run renders in rounds until each is met. Round 1
    is the recipe's `groups` (it also measures the rates); each later round asks, per
    group kind, for the groups that make every task's shortfall at the pairs per group
    measured so far (a kind's own rate once `min_measured` of its groups are in, else
    `costs.priors`), times `margin`. A task's samples beyond its target are recorded as
    `over_target` rejections and not written; after `max_rounds` rounds a target still
    short is reported with what it reached. Tasks without a target keep what the rounds
    make."""

    pairs: dict[TaskName, Annotated[int, Field(ge=1, le=100_000_000)]] = Field(
        min_length=1, description="task -> train samples wanted"
    )
    margin: float = Field(
        1.25,
        ge=1,
        le=10,
        description="groups asked for over the measured need: a round "
        "short of a target costs a round, one past it only over-target samples",
    )
    min_measured: int = Field(
        4, ge=1, le=100_000, description="groups of a kind before its own rate is used"
    )
    max_rounds: int = Field(3, ge=1, le=100, description="rounds, the first one included")


def _check_reasons(value: dict[str, Rule]) -> dict[str, Rule]:
    for reason in value:
        if not _REASON.match(reason):
            raise ValueError(
                f"reason {reason!r} must be lower_snake_case (it is stored and counted)"
            )
    return value


class EstimatePriors(Strict):
    """What `datapipe plan` assumes before a pilot has measured it (a pilot replaces
    every one of these with its own figures)."""

    render_seconds: float = Field(
        35.0,
        gt=0,
        le=100_000,
        description="device-seconds of one render (a 50-step Qwen-Image render on an H200: 35)",
    )
    keep_rate: float = Field(0.7, gt=0, le=1, description="share of renders the filter keeps")
    llm_tokens_per_call: tuple[int, int] = Field(
        (400, 120), description="prompt LLM tokens per call: input, output"
    )
    judge_tokens_per_call: tuple[int, int] = Field(
        (1500, 200), description="bench judge tokens per call: input, output"
    )


class CostConfig(Strict):
    """Prices for the cost report of every run (run.json and the summary): what a GPU
    hour, the prompt LLM's tokens and the bench judge's tokens cost. They change what a
    run reports, never what it makes, so they are outside the recipe hash (a price
    change does not block a resume)."""

    gpu_hour_usd: float = Field(0.0, ge=0, le=1000, description="one whole GPU for an hour")
    llm_input_per_mtok_usd: float = Field(
        0.0, ge=0, le=1000, description="prompt stage LLM: per million input tokens"
    )
    llm_output_per_mtok_usd: float = Field(
        0.0, ge=0, le=1000, description="prompt stage LLM: per million output tokens"
    )
    judge_input_per_mtok_usd: float = Field(
        0.0, ge=0, le=1000, description="bench judge (Gemini): per million input tokens"
    )
    judge_output_per_mtok_usd: float = Field(
        0.0, ge=0, le=1000, description="bench judge (Gemini): per million output tokens"
    )
    priors: EstimatePriors = Field(
        default_factory=EstimatePriors, description="what `datapipe plan` assumes without a pilot"
    )


class CoverageConfig(Strict):
    """What the output must cover; a miss is reported (summary, run.json), never fatal.
    Outside the recipe hash: it changes what a run reports, not what it makes."""

    min_samples_per_entity_task: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="fewest train and bench samples every entity of the recipe's themes must "
        "get in every enabled task; 0: not checked",
    )


class Recipe(Strict):
    """A whole run: what to render, how to check it, which pairs to build and how to shard them."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    """The recipe's name: recorded in run.json and the dataset card's title."""
    seed: int = Field(ge=0, le=2**31 - 1)
    """Seed of the run's random choices: part of the generation hash, from which every group id
    and so every render seed derives."""
    libraries: Libraries = Libraries()
    languages: dict[Language, float] = Field(min_length=1)
    """Weight per language: each kind's groups are split between the languages in proportion
    (e.g. zh: 1, en: 1 for half each)."""
    themes: list[Theme] = Field(default_factory=lambda: list(ALL_THEMES), min_length=1)
    """Entity library themes to draw from; each kind and language's groups are spread evenly over
    them."""
    groups: GroupCounts
    group_size: GroupSizes = GroupSizes()
    image: ImageConfig = ImageConfig()
    block_size: int = Field(16, ge=1, le=100_000)
    """Groups per block: the unit a run commits and resumes; a rerun redoes only the blocks
    not yet committed."""
    stages: StagesConfig = StagesConfig()
    thresholds: dict[str, Rule] = Field(default_factory=dict)
    """Filter rules by reason (lower_snake_case): a render whose score is outside a rule's bounds
    is rejected with that reason, stored and counted."""
    tasks: TasksConfig = TasksConfig()
    shards: ShardConfig = ShardConfig()
    near_duplicates: NearDuplicateConfig = NearDuplicateConfig()
    bench: BenchConfig | None = None
    targets: TargetsConfig | None = Field(
        None, description="train pairs wanted per task; None: render `groups` once"
    )
    execution: ExecutionConfig = ExecutionConfig()
    costs: CostConfig = CostConfig()
    coverage: CoverageConfig = CoverageConfig()

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: dict[str, float]) -> dict[str, float]:
        for lang, weight in value.items():
            if not 0 < weight <= 1000:
                raise ValueError(f"weight of {lang!r} must be > 0 (got {weight})")
        return value

    @field_validator("themes")
    @classmethod
    def _themes(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("themes repeat")
        return value

    @field_validator("thresholds")
    @classmethod
    def _reasons(cls, value: dict[str, Rule]) -> dict[str, Rule]:
        return _check_reasons(value)

    @model_validator(mode="after")
    def _consistent(self) -> Recipe:
        if self.groups.rescale and len(self.image.aspect_ratios) < 2:
            raise ValueError(
                "groups.rescale needs at least two image.aspect_ratios to render a group at"
            )
        if self.tasks.style.enabled and not self.stages.phash.enabled:
            raise ValueError("tasks.style checks near-duplicates: it needs stages.phash.enabled")
        clip_checks = (self.tasks.rescale.min_clip_similarity, self.tasks.style.max_clip_similarity)
        if any(v is not None for v in clip_checks) and not self.stages.clip.enabled:
            raise ValueError("tasks use CLIP similarity thresholds: they need stages.clip.enabled")
        if self.near_duplicates.max_distance is not None and not self.stages.phash.enabled:
            raise ValueError(
                "near_duplicates.max_distance needs stages.phash.enabled "
                "(or set near_duplicates.max_distance: null to not check)"
            )
        if self.targets is not None:
            for task in self.targets.pairs:
                if task not in self.tasks.enabled():
                    raise ValueError(f"targets.pairs: {task} is not enabled in `tasks`")
        if self.bench is not None:
            enabled = self.split_tasks("bench").enabled()
            for task in self.bench.tasks or []:
                if task not in enabled:
                    raise ValueError(f"bench.tasks: {task} is not enabled in the bench's tasks")
            if not self.bench_tasks():
                raise ValueError("bench: no task is enabled for the bench split")
        return self

    def bench_tasks(self) -> list[str]:
        """The tasks the bench split holds, in the canonical task order."""
        if self.bench is None:
            return []
        enabled = self.split_tasks("bench").enabled()
        wanted = self.bench.tasks
        return [t for t in enabled if wanted is None or t in wanted]

    def split_thresholds(self, split: str) -> dict[str, Rule]:
        """The rules a split filters with: the bench adds (or tightens) its own."""
        if split == "bench" and self.bench is not None:
            return {**self.thresholds, **self.bench.thresholds}
        return dict(self.thresholds)

    def split_tasks(self, split: str) -> TasksConfig:
        if split == "bench" and self.bench is not None and self.bench.task_settings is not None:
            return self.bench.task_settings
        return self.tasks

    def near_duplicate_distance(self, split: str) -> int | None:
        bench = self.bench
        if split == "bench" and bench is not None and bench.near_duplicate_distance is not None:
            return bench.near_duplicate_distance
        return self.near_duplicates.max_distance

    def generation_view(self) -> dict[str, Any]:
        """What decides specs and pixels; thresholds, tasks and shards do not."""
        data = self.model_dump(mode="json")
        keys = ("seed", "languages", "themes", "groups", "group_size", "image", "block_size")
        view = {k: data[k] for k in keys}
        if self.bench is not None:  # which entity x style pairs each split may use
            view["bench_pair_share"] = self.bench.pair_share
        view["stages"] = {k: data["stages"][k] for k in ("prompt", "render")}
        return view
