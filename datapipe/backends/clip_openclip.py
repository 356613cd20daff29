"""CLIP similarity with open_clip: image-text (prompt match) and image-image (rescale, style).

Weights come from local files only; nothing is downloaded. Either a folder laid out
like an open_clip hub repository (`model: local-dir:/path`: open_clip_config.json with
the model and preprocessing config the weights were trained with, the checkpoint, the
text tokenizer's files and, for a Hugging Face text tower such as XLM-R, its
config.json), or an architecture name with a checkpoint file and the pretrained tag that
file holds (`weights` + `pretrained_tag`), whose config open_clip knows. A bare
checkpoint is refused: open_clip would build it with the architecture's defaults, so
QuickGELU and mean/std would silently differ from training.

Images are resized on their long side and padded to the square input (never
centre-cropped: a crop drops the edges of a 16:9 or 9:16 poster). Texts longer than the
model's context are cut by the tokenizer, so `token_count` says which are, and the
stage counts them. Embeddings are L2-normalised float32, so a cosine is a dot product.
"""

from __future__ import annotations

import hashlib
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
LOCAL_DIR = "local-dir:"
CONFIG_FILE = "open_clip_config.json"
CHECKPOINT_NAMES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
)
"""What open_clip's hub repositories name their weights, in the order it prefers them."""
TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model", "vocab.txt")
"""Any one of these makes a folder loadable by transformers.AutoTokenizer."""
LAYOUT = (
    f"{CONFIG_FILE} (model_cfg + preprocess_cfg), one of {', '.join(CHECKPOINT_NAMES)}; "
    "for a Hugging Face text tower (hf_model_name / hf_tokenizer_name in text_cfg) also "
    "tokenizer_config.json with one of " + ", ".join(TOKENIZER_FILES) + " and the text "
    "tower's config.json"
)
FIELD = "stages.clip.model"


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


def file_digest(path: Path, chunk: int = 1 << 24) -> str:
    """sha256 of a file, read in 16 MiB pieces (checkpoints are gigabytes)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_DIGESTS: dict[tuple[str, int, int], str] = {}


def describe(config: ClipStageConfig) -> dict[str, Any]:
    """What run.json records of the CLIP model: reference, tag, checkpoint and its sha256
    (computed once per process; None where the file is not on this node)."""
    folder = local_dir(config.model)
    record: dict[str, Any] = {"model": config.model, "pretrained_tag": config.pretrained_tag}
    if folder is not None:
        path = next((folder / n for n in CHECKPOINT_NAMES if (folder / n).is_file()), None)
        config_file = folder / CONFIG_FILE
        if config_file.is_file():
            record["config_sha256"] = hashlib.sha256(config_file.read_bytes()).hexdigest()
    else:
        path = Path(config.weights).expanduser() if config.weights else None
    record["checkpoint"] = str(path) if path else None
    record["sha256"] = None
    if path is not None and path.is_file():
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _DIGESTS:
            _DIGESTS[key] = file_digest(path)
        record["sha256"] = _DIGESTS[key]
    return record


def local_dir(model: str) -> Path | None:
    """The folder of a `local-dir:` model reference; None for an architecture name."""
    if not model.startswith(LOCAL_DIR):
        return None
    return Path(model[len(LOCAL_DIR) :]).expanduser()


def needs_hf_text(model_cfg: dict[str, Any]) -> bool:
    text = model_cfg.get("text_cfg", {})
    return bool(text.get("hf_model_name") or text.get("hf_tokenizer_name"))


def read_local_dir(folder: Path) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """(model_cfg, preprocess_cfg, checkpoint) of a local open_clip folder, every file the
    layout needs checked; an error names the missing file and the layout."""
    fix = f"lay the folder out as an open_clip hub repository: {LAYOUT}"
    if not (folder / CONFIG_FILE).is_file():
        raise DatapipeError(
            f"{folder} has no {CONFIG_FILE}: the weights' own model and preprocessing "
            "config is needed (QuickGELU, mean/std, tokenizer)",
            where=FIELD,
            fix=fix,
        )
    try:
        data = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        model_cfg = dict(data["model_cfg"])
    except (ValueError, KeyError, TypeError) as fault:
        raise DatapipeError(
            f"{folder / CONFIG_FILE}: not an open_clip config ({one_line(fault)})",
            where=FIELD,
            fix="copy open_clip_config.json from the weights' hub repository",
        ) from None
    checkpoint = next((folder / n for n in CHECKPOINT_NAMES if (folder / n).is_file()), None)
    if checkpoint is None:
        raise DatapipeError(f"{folder} has no checkpoint", where=FIELD, fix=fix)
    if needs_hf_text(model_cfg):
        missing = [
            name
            for name, ok in (
                ("tokenizer_config.json", (folder / "tokenizer_config.json").is_file()),
                (" or ".join(TOKENIZER_FILES), _any_file(folder, TOKENIZER_FILES)),
                ("config.json", (folder / "config.json").is_file()),
            )
            if not ok
        ]
        if missing:
            raise DatapipeError(
                f"{folder}: the text tower is a Hugging Face model but {missing[0]} is missing",
                where=FIELD,
                fix=fix,
            )
    return model_cfg, dict(data.get("preprocess_cfg") or {}), checkpoint


def _any_file(folder: Path, names: tuple[str, ...]) -> bool:
    return any((folder / n).is_file() for n in names)


def expected_files(config: ClipStageConfig) -> list[tuple[str, str]]:
    """(path, what it is) of every file the model needs; `a | b` means one of them."""
    folder = local_dir(config.model)
    if folder is None:
        return [(config.weights or "stages.clip.weights", f"{config.model} checkpoint")]
    files = [
        (str(folder / CONFIG_FILE), "model_cfg and preprocess_cfg (QuickGELU, mean/std)"),
        (" | ".join(str(folder / n) for n in CHECKPOINT_NAMES), "the weights"),
    ]
    try:
        model_cfg = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))["model_cfg"]
    except (OSError, ValueError, KeyError, TypeError):
        model_cfg = {"text_cfg": {"hf_model_name": "unknown until the config is there"}}
    if needs_hf_text(model_cfg):
        files += [
            (str(folder / "tokenizer_config.json"), "text tokenizer settings"),
            (" | ".join(str(folder / n) for n in TOKENIZER_FILES), "text tokenizer vocabulary"),
            (str(folder / "config.json"), "the Hugging Face text tower's config"),
        ]
    return files


ENGLISH_SIGLIP = "c4-en"


def english_only(config: ClipStageConfig) -> str | None:
    """Why the configured text tower reads English only (None when it does not, or when
    that cannot be told without its files): open_clip's BPE tokenizer turns Chinese into
    byte pieces the English models never learned, with no unknown token to count."""
    folder = local_dir(config.model)
    if folder is not None:
        try:
            data = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            model_cfg = data["model_cfg"]
        except (OSError, ValueError, KeyError, TypeError):
            return None  # the file findings say what is missing
        name = ""
    else:
        try:
            import open_clip
        except ImportError:
            return None
        model_cfg = open_clip.get_model_config(config.model) or {}
        name = config.model.lower()
    if "siglip" in name:  # open_clip picks the tokenizer by name: Gemma, mC4 or English C4
        return None if ("siglip2" in name or "i18n" in name) else f"SigLIP's {ENGLISH_SIGLIP}"
    if needs_hf_text(model_cfg):
        return None  # counted with the real tokenizer files where they are on the node
    return "open_clip's English BPE tokenizer (byte pieces for Chinese)"


def unknown_characters(folder: Path, characters: list[str]) -> list[str]:
    """The characters the folder's tokenizer reads as its unknown token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    unk = tokenizer.unk_token_id
    return [c for c in characters if unk is not None and unk in tokenizer(c)["input_ids"]]


def token_count(tokenizer: Any, text: str) -> tuple[int, int]:
    """(tokens with the special ones, unknown tokens) of `text` before any truncation."""
    clean = getattr(tokenizer, "clean_fn", None) or (lambda t: t)
    inner = getattr(tokenizer, "tokenizer", None)
    if inner is not None and hasattr(inner, "unk_token_id"):  # HFTokenizer (XLM-R, SigLIP)
        ids = inner(clean(text))["input_ids"]
        unk = inner.unk_token_id
        return len(ids), sum(1 for i in ids if unk is not None and i == unk)
    return len(tokenizer.encode(clean(text))) + 2, 0  # SimpleTokenizer: byte BPE + sot/eot


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class ClipScorer:
    """open_clip embeddings and cosine similarities; the model loads in `load()`."""

    def __init__(self, config: ClipStageConfig) -> None:
        self.config = config
        self.model: Any = None
        self.preprocess: Any = None
        self.tokenizer: Any = None
        self.checkpoint: Path | None = None
        self.embed_dim: int | None = None
        self._quick_gelu = False
        self._torch: Any = None

    @property
    def version(self) -> str:
        c = self.config
        folder = local_dir(c.model)
        package = _package_version("open_clip_torch")
        if folder is not None:
            return f"open_clip:local-dir:{folder.name}:open_clip-{package}"
        weights = Path(c.weights).name if c.weights else "no-weights"
        return f"open_clip:{c.model}:{weights}@{c.pretrained_tag}:open_clip-{package}"

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
        name, checkpoint, preprocess_cfg = self._resolve(open_clip)
        device = check_device(torch, cfg.device, "stages.clip.device")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name,
                pretrained=str(checkpoint.resolve()),  # absolute: never mistaken for a tag
                device=device,
                force_quick_gelu=bool(self._quick_gelu),
                image_mean=preprocess_cfg.get("mean"),
                image_std=preprocess_cfg.get("std"),
                image_interpolation=preprocess_cfg.get("interpolation"),
                image_resize_mode="longest",  # pad, never crop: the edges are scored too
            )
            tokenizer = open_clip.get_tokenizer(name)
        except (RuntimeError, KeyError, ValueError, OSError) as fault:
            raise DatapipeError(
                f"cannot load open_clip checkpoint {checkpoint} into {cfg.model}: "
                f"{one_line(fault)}",
                where="stages.clip.weights" if local_dir(cfg.model) is None else FIELD,
            ) from fault
        model.eval()
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.checkpoint = checkpoint
        self.embed_dim = int(open_clip.get_model_config(name)["embed_dim"])
        self._torch = torch

    def _resolve(self, open_clip: Any) -> tuple[str, Path, dict[str, Any]]:
        """(registered model name, checkpoint, preprocess config) from the recipe."""
        cfg = self.config
        folder = local_dir(cfg.model)
        if folder is not None:
            model_cfg, preprocess_cfg, checkpoint = read_local_dir(folder)
            if needs_hf_text(model_cfg):
                # The text tower and its tokenizer are read from the same folder, offline.
                text = dict(model_cfg["text_cfg"])
                text.update(
                    hf_model_name=str(folder.resolve()),
                    hf_tokenizer_name=str(folder.resolve()),
                    hf_model_pretrained=False,  # the checkpoint holds the tower's weights
                )
                model_cfg["text_cfg"] = text
            where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
            name = f"datapipe-local-{where}"
            self._register(open_clip, name, model_cfg)
            return name, checkpoint, preprocess_cfg
        if cfg.model.startswith("hf-hub:"):
            raise DatapipeError(
                f"model {cfg.model!r}: a hub reference would download at run time",
                where=FIELD,
                fix="download the repository once and give model: local-dir:/path/to/it",
            )
        if cfg.model not in open_clip.list_models():
            raise DatapipeError(
                f"unknown open_clip model {cfg.model!r}",
                where=FIELD,
                fix="pick a name from open_clip.list_models(), or give local-dir:/path",
            )
        if not cfg.weights:
            raise DatapipeError(
                "no open_clip checkpoint given; random weights would score nothing",
                where="stages.clip.weights",
                fix="give model: local-dir:/path (open_clip hub layout), or weights and "
                "pretrained_tag",
            )
        weights = Path(cfg.weights).expanduser()
        if not weights.is_file():
            raise DatapipeError(
                f"open_clip checkpoint {weights} does not exist",
                where="stages.clip.weights",
                fix="copy the checkpoint to this path on every worker",
            )
        if not cfg.pretrained_tag:
            raise DatapipeError(
                f"checkpoint {weights} comes without its config: open_clip would build "
                f"{cfg.model} with its defaults, and QuickGELU and mean/std would not match "
                "the training of these weights",
                where="stages.clip.pretrained_tag",
                fix="set pretrained_tag to the tag the file was downloaded as (one of "
                f"{', '.join(open_clip.list_pretrained_tags_by_model(cfg.model)) or 'none'}), "
                f"or give model: local-dir:/path with {CONFIG_FILE}",
            )
        tag = open_clip.get_pretrained_cfg(cfg.model, cfg.pretrained_tag)
        if not tag:
            raise DatapipeError(
                f"open_clip knows no pretrained tag {cfg.pretrained_tag!r} for {cfg.model}",
                where="stages.clip.pretrained_tag",
                fix="use one of "
                + (", ".join(open_clip.list_pretrained_tags_by_model(cfg.model)) or "none"),
            )
        self._quick_gelu = bool(tag.get("quick_gelu", False))
        keys = ("mean", "std", "interpolation", "resize_mode")
        return cfg.model, weights, {k: tag[k] for k in keys if k in tag}

    @staticmethod
    def _register(open_clip: Any, name: str, model_cfg: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{name}.json"
            path.write_text(json.dumps(model_cfg), encoding="utf-8")
            open_clip.add_model_config(path)  # read now; the file may go

    def count_tokens(self, texts: list[str]) -> list[tuple[int, int]]:
        """(tokens, unknown tokens) per text, before truncation to `context_length`."""
        self._ready()
        return [token_count(self.tokenizer, t) for t in texts]

    @property
    def context_length(self) -> int:
        self._ready()
        return int(self.tokenizer.context_length)

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
