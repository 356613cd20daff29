"""CLIP similarity with open_clip: image-text (prompt match) and image-image (rescale, style).

Weights come from a local checkpoint file only (`stages.clip.weights`); a hub tag is never
resolved, so a run never downloads anything. Embeddings are L2-normalised float32, so a
cosine is a dot product.
"""

from __future__ import annotations

import json
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from datapipe.errors import DatapipeError, MissingDependencyError

if TYPE_CHECKING:
    from PIL import Image

    from datapipe.recipe import ClipStageConfig

INSTALL = "install torch first (see README), then pip install 'datapipe[models]'"


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "missing"


def check_device(torch: Any, device: str, field: str) -> str:
    """The device string if this machine has it, else a one-line error naming the field."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DatapipeError(
            f"device {device!r} requested but CUDA is not available on this machine",
            where=field,
            fix="set it to 'cpu' or run on a GPU worker",
        )
    return device


def one_line(fault: BaseException, limit: int = 300) -> str:
    """An exception's message as a single line (whitespace collapsed), cut at `limit`."""
    text = " ".join(str(fault).split()) or type(fault).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class ClipScorer:
    """open_clip embeddings and cosine similarities; the model loads in `load()`."""

    def __init__(self, config: ClipStageConfig, model_config: dict | None = None) -> None:
        """`model_config`: an open_clip model config (embed_dim, vision_cfg, text_cfg)
        registered under `config.model` before the model is built (a custom or tiny model)."""
        self.config = config
        self.model_config = model_config
        self.model: Any = None
        self.preprocess: Any = None
        self.tokenizer: Any = None
        self.embed_dim: int | None = None
        self._torch: Any = None

    @property
    def version(self) -> str:
        weights = Path(self.config.weights).name if self.config.weights else "no-weights"
        package = _package_version("open_clip_torch")
        return f"open_clip:{self.config.model}:{weights}:open_clip-{package}"

    def load(self) -> None:
        try:
            import open_clip
            import torch
        except ImportError as missing:
            raise MissingDependencyError(
                f"the CLIP backend needs torch and open_clip_torch ({missing.name} is missing)",
                fix=INSTALL,
            ) from None
        cfg = self.config
        if cfg.model.startswith(("hf-hub:", "local-dir:")):
            raise DatapipeError(
                f"model {cfg.model!r}: give an open_clip architecture name, not a hub or folder "
                "reference",
                where="stages.clip.model",
                fix="e.g. model: ViT-L-14 with weights: /path/to/open_clip_model.safetensors",
            )
        if not cfg.weights:
            raise DatapipeError(
                "no open_clip checkpoint given; random weights would score nothing",
                where="stages.clip.weights",
                fix="set it to a local checkpoint file",
            )
        weights = Path(cfg.weights).expanduser()
        if not weights.is_file():
            raise DatapipeError(
                f"open_clip checkpoint {weights} does not exist",
                where="stages.clip.weights",
                fix="copy the checkpoint to this path on every worker",
            )
        device = check_device(torch, cfg.device, "stages.clip.device")
        if self.model_config is not None:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / f"{cfg.model}.json"
                path.write_text(json.dumps(self.model_config), encoding="utf-8")
                open_clip.add_model_config(path)  # read now; the file may go
        if cfg.model not in open_clip.list_models():
            raise DatapipeError(
                f"unknown open_clip model {cfg.model!r}",
                where="stages.clip.model",
                fix="pick a name from open_clip.list_models()",
            )
        try:
            # An absolute path can never be mistaken for a pretrained tag (which downloads).
            model, _, preprocess = open_clip.create_model_and_transforms(
                cfg.model, pretrained=str(weights.resolve()), device=device
            )
        except (RuntimeError, KeyError, ValueError, OSError) as fault:
            raise DatapipeError(
                f"cannot load open_clip checkpoint {weights} into {cfg.model}: {one_line(fault)}",
                where="stages.clip.weights",
            ) from fault
        model.eval()
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(cfg.model)
        self.embed_dim = int(open_clip.get_model_config(cfg.model)["embed_dim"])
        self._torch = torch

    def _ready(self) -> None:
        if self.model is None:
            self.load()

    def encode_images(self, images: list[Image.Image]) -> np.ndarray:
        """(n, embed_dim) L2-normalised float32, in batches of `batch_size`."""
        self._ready()
        torch = self._torch
        out = []
        step = self.config.batch_size
        with torch.inference_mode():
            for start in range(0, len(images), step):
                batch = torch.stack(
                    [self.preprocess(im.convert("RGB")) for im in images[start : start + step]]
                ).to(self.config.device)
                out.append(self.model.encode_image(batch).float().cpu().numpy())
        return self._stack(out)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """(n, embed_dim) L2-normalised float32, in batches of `batch_size`."""
        self._ready()
        torch = self._torch
        out = []
        step = self.config.batch_size
        with torch.inference_mode():
            for start in range(0, len(texts), step):
                tokens = self.tokenizer(list(texts[start : start + step])).to(self.config.device)
                out.append(self.model.encode_text(tokens).float().cpu().numpy())
        return self._stack(out)

    def _stack(self, parts: list[np.ndarray]) -> np.ndarray:
        if not parts:
            return np.zeros((0, self.embed_dim or 0), dtype=np.float32)
        return _unit(np.concatenate(parts, axis=0))

    def image_text(self, images: list[Image.Image], texts: list[str]) -> np.ndarray:
        """Cosine of image i with text i: shape (n,), float32 in [-1, 1]."""
        if len(images) != len(texts):
            raise ValueError(f"image_text: {len(images)} images but {len(texts)} texts")
        return self.image_image(self.encode_images(images), self.encode_texts(texts))

    @staticmethod
    def image_image(a_embeddings: np.ndarray, b_embeddings: np.ndarray) -> np.ndarray:
        """Cosine of row i of `a` with row i of `b` (a single row broadcasts): shape (n,).

        Inputs are re-normalised, so raw or stored embeddings both work."""
        a, b = _unit(np.atleast_2d(a_embeddings)), _unit(np.atleast_2d(b_embeddings))
        if a.shape[-1] != b.shape[-1]:
            raise ValueError(f"image_image: embedding sizes differ ({a.shape} vs {b.shape})")
        if len(a) != len(b) and 1 not in (len(a), len(b)):
            raise ValueError(f"image_image: {len(a)} embeddings against {len(b)}")
        return np.clip(np.sum(a * b, axis=-1), -1.0, 1.0).astype(np.float32)
