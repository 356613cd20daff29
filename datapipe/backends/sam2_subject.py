"""Subject mask from a text prompt: a zero-shot detector finds the boxes, SAM-2 segments
each and the masks are united (a plural subject is several instances).

The prompt is the entity's English detector phrase: both detectors' text encoders read
English only (bert-base-uncased, CLIP BPE).

The detector (OWLv2 or Grounding DINO) is a transformers model saved in a local folder;
SAM-2 is built from its package config and a local checkpoint. Nothing is downloaded:
every path is checked at `load()` and a missing one is a one-line error naming it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datapipe.backends.clip_openclip import check_device, one_line
from datapipe.errors import DatapipeError, MissingDependencyError

if TYPE_CHECKING:
    from PIL import Image

    from datapipe.recipe import Sam2Config

INSTALL = (
    "install torch first (see README), then pip install 'datapipe[models]' and "
    "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2"
)
FIELD = "stages.subject.sam2"
NO_BOX = "no box above threshold"

# detector_kind -> (transformers model class, config model_type)
DETECTORS = {
    "owlv2": ("Owlv2ForObjectDetection", "owlv2"),
    "grounding_dino": ("GroundingDinoForObjectDetection", "grounding-dino"),
}


DETECTOR_VOCAB = {"owlv2": "vocab.json", "grounding_dino": "vocab.txt"}
"""The slow tokenizer's vocabulary, what a hub folder has when it has no tokenizer.json."""


def expected_files(config: Sam2Config) -> list[tuple[str, str]]:
    """(path, what it is) of every file the subject backend loads; `a | b`: one of them."""
    folder = Path(config.detector)
    kind = config.detector_kind
    vocab = f"{folder / 'tokenizer.json'} | {folder / DETECTOR_VOCAB[kind]}"
    return [
        (config.checkpoint, f"SAM-2 checkpoint for {config.config}"),
        (str(folder / "config.json"), f"{kind} model config"),
        (f"{folder / 'model.safetensors'} | {folder / 'pytorch_model.bin'}", f"{kind} weights"),
        (
            f"{folder / 'preprocessor_config.json'} | {folder / 'processor_config.json'}",
            f"{kind} image processor (transformers 5 saves processor_config.json)",
        ),
        (str(folder / "tokenizer_config.json"), f"{kind} tokenizer settings"),
        (vocab, f"{kind} tokenizer vocabulary"),
    ]


@dataclass
class SubjectResult:
    """One prompt on one image.

    mask: bool array (height, width) of the image, the union of every box's mask, or None
        when no box was found.
    box: [x0, y0, x1, y1] in pixels, end-exclusive, clipped to the image: the extent of
        `boxes`; None with no box.
    detector_score: the detector's best score among the boxes used; without one, its best
        score for the prompt even though below threshold (0.0 when it proposed no box).
    sam_score: SAM-2's predicted IoU, the lowest over the boxes' masks; None without a mask.
    reason: why there is no mask (None when there is one).
    text_truncated: the prompt did not fit the detector's text context.
    boxes: every box above the threshold (at most `max_boxes`, best first): a plural
        subject (cherries, a flock of birds) is several instances, and each is segmented.
    """

    mask: np.ndarray | None
    box: list[int] | None
    detector_score: float
    sam_score: float | None
    reason: str | None = None
    boxes: list[list[int]] = field(default_factory=list)
    text_truncated: bool = False


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def _clip_box(box: list[float], width: int, height: int) -> list[int] | None:
    """Pixel box grown to whole pixels and clipped to the image; None if nothing is left."""
    x0, y0, x1, y1 = box
    x0, y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    x1, y1 = min(width, math.ceil(x1)), min(height, math.ceil(y1))
    if x1 <= x0 or y1 <= y0:
        return None
    return [int(x0), int(y0), int(x1), int(y1)]


class Sam2Subject:
    """Text-prompted subject masks; models load in `load()`, once per worker."""

    def __init__(self, config: Sam2Config, overrides: list[str] | None = None) -> None:
        """`overrides`: extra hydra overrides for the SAM-2 config (e.g. a smaller
        `++model.image_size=256`); the checkpoint must match the overridden model."""
        self.config = config
        self.overrides = list(overrides or [])
        self.processor: Any = None
        self.detector: Any = None
        self.predictor: Any = None
        self._torch: Any = None

    @property
    def version(self) -> str:
        c = self.config
        return (
            f"sam2:{Path(c.config).stem}:{Path(c.checkpoint).name}"
            f"+{c.detector_kind}:{Path(c.detector).name}"
            f":sam2-{_version('sam2')}:transformers-{_version('transformers')}"
        )

    def load(self) -> None:
        try:
            import torch
            import transformers
            from sam2.build_sam import build_sam2
            from sam2.sam2_image_predictor import SAM2ImagePredictor
        except ImportError as missing:
            raise MissingDependencyError(
                "the SAM-2 subject backend needs torch, transformers and sam2 "
                f"({missing.name} is missing)",
                fix=INSTALL,
            ) from None
        cfg = self.config
        checkpoint = Path(cfg.checkpoint).expanduser()
        detector_dir = Path(cfg.detector).expanduser()
        if not checkpoint.is_file():
            raise DatapipeError(
                f"SAM-2 checkpoint {checkpoint} does not exist",
                where=f"{FIELD}.checkpoint",
                fix="copy the .pt file to this path on every worker",
            )
        if not (detector_dir / "config.json").is_file():
            raise DatapipeError(
                f"detector folder {detector_dir} does not exist or has no config.json",
                where=f"{FIELD}.detector",
                fix="save the detector there with save_pretrained (model and processor)",
            )
        device = check_device(torch, cfg.device, f"{FIELD}.device")
        self.processor, self.detector = self._load_detector(transformers, detector_dir, device)
        model = self._load_sam2(build_sam2, checkpoint, device)
        predictor = SAM2ImagePredictor(model)
        # The predictor assumes a 1024 input; derive the feature sizes from the model's own.
        size = int(model.image_size)
        predictor._bb_feat_sizes = [(size // k, size // k) for k in (4, 8, 16)]
        self.predictor = predictor
        self._torch = torch

    def _load_detector(self, transformers: Any, folder: Path, device: str) -> tuple[Any, Any]:
        kind = self.config.detector_kind
        class_name, model_type = DETECTORS[kind]
        try:
            model_config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
            if model_config.model_type != model_type:
                raise DatapipeError(
                    f"detector folder {folder} holds a {model_config.model_type!r} model, "
                    f"not {kind}",
                    where=f"{FIELD}.detector_kind",
                )
            processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)
            model = getattr(transformers, class_name).from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError) as fault:
            raise DatapipeError(
                f"cannot load the {kind} detector from {folder}: {one_line(fault)}",
                where=f"{FIELD}.detector",
            ) from fault
        return processor, model.to(device).eval()

    def _load_sam2(self, build_sam2: Any, checkpoint: Path, device: str) -> Any:
        from hydra.errors import MissingConfigException

        try:
            return build_sam2(
                self.config.config,
                ckpt_path=str(checkpoint),
                device=device,
                hydra_overrides_extra=self.overrides,
            )
        except MissingConfigException as fault:
            raise DatapipeError(
                f"SAM-2 config {self.config.config!r} not found in the sam2 package: "
                f"{one_line(fault)}",
                where=f"{FIELD}.config",
                fix="use a packaged name such as configs/sam2.1/sam2.1_hiera_l.yaml",
            ) from fault
        except Exception as fault:
            # An unreadable file, missing or unexpected keys (sam2 logs them and raises an
            # empty RuntimeError), shapes from another model size, a bad override.
            detail = f": {one_line(fault)}" if str(fault).strip() else ""
            raise DatapipeError(
                f"cannot build SAM-2 from checkpoint {checkpoint} with config "
                f"{self.config.config} and overrides {self.overrides}{detail}",
                where=f"{FIELD}.checkpoint",
            ) from fault

    def _boxes(self, image: Image.Image, prompt: str) -> tuple[np.ndarray, np.ndarray]:
        """Every box the detector proposes for the prompt: scores (n,), boxes (n, 4) xyxy."""
        size = [(image.height, image.width)]
        if self.config.detector_kind == "grounding_dino":
            # Grounding DINO reads lower-case phrases ending in "."; its text is capped.
            text = prompt.strip().lower().rstrip(".") + "."
            inputs = self.processor(
                images=image,
                text=text,
                return_tensors="pt",
                truncation=True,
                max_length=self.detector.config.max_text_len,
            ).to(self.detector.device)
            outputs = self.detector(**inputs)
            (found,) = self.processor.post_process_grounded_object_detection(
                outputs, inputs["input_ids"], threshold=0.0, text_threshold=0.0, target_sizes=size
            )
        else:
            inputs = self.processor(
                images=image, text=[[prompt.strip()]], return_tensors="pt", truncation=True
            ).to(self.detector.device)
            outputs = self.detector(**inputs)
            # Boxes come back in the padded square's frame, scaled to the original pixels.
            (found,) = self.processor.post_process_grounded_object_detection(
                outputs, threshold=0.0, target_sizes=size
            )
        scores = found["scores"].float().cpu().numpy()
        boxes = found["boxes"].float().cpu().numpy().reshape(-1, 4)
        return scores, boxes

    def _too_long(self, prompt: str) -> bool:
        """Whether the processor cuts the prompt (both truncate to the text context)."""
        if self.config.detector_kind == "grounding_dino":
            limit = int(self.detector.config.max_text_len)
        else:
            limit = int(self.detector.config.text_config.max_position_embeddings)
        return len(self.processor.tokenizer(prompt.strip())["input_ids"]) > limit

    def segment(self, image: Image.Image, prompt: str) -> SubjectResult:
        """The union of the masks of every box for `prompt` (the entity's English detector
        phrase) above `box_threshold`, best `max_boxes` first."""
        if self.predictor is None:
            self.load()
        rgb = image.convert("RGB")
        width, height = rgb.size
        with self._torch.inference_mode():
            scores, boxes = self._boxes(rgb, prompt)
            cut = self._too_long(prompt)
            best = float(scores.max()) if len(scores) else 0.0
            chosen: list[list[int]] = []
            for i in np.argsort(-scores, kind="stable"):
                if (
                    len(chosen) == self.config.max_boxes
                    or not scores[i] > self.config.box_threshold
                ):
                    break
                box = _clip_box(boxes[i].tolist(), width, height)
                if box is not None:
                    if not chosen:
                        best = float(scores[i])
                    chosen.append(box)
            if not chosen:
                return SubjectResult(None, None, best, None, NO_BOX, text_truncated=cut)
            self.predictor.set_image(np.array(rgb))  # a writable copy
            masks, ious, _ = self.predictor.predict(
                box=np.asarray(chosen, dtype=np.float32), multimask_output=False
            )
        # One box gives (1, H, W), several (n, 1, H, W): already thresholded at logit 0.
        masks = np.asarray(masks).reshape(len(chosen), height, width) > 0.5
        extent = [
            min(b[0] for b in chosen),
            min(b[1] for b in chosen),
            max(b[2] for b in chosen),
            max(b[3] for b in chosen),
        ]
        sam = float(np.min(np.asarray(ious)))
        return SubjectResult(masks.any(axis=0), extent, best, sam, None, chosen, cut)
