"""Qwen-Image through diffusers: the GPU renderer of the cluster recipes.

The model is a local diffusers pipeline directory (`QwenImagePipeline.save_pretrained`
or a snapshot of Qwen/Qwen-Image); the hub is never contacted. Optionally a few-step
distillation LoRA (Qwen-Image-Lightning) is loaded on top of it, fused into the
transformer, and its own step count and CFG scale replace the base ones.

Specs of the same size are rendered together, up to `batch_size` per pipeline call,
each with its own seeded generator, so a spec's pixels depend on its spec and seed and
not on its batch mates (up to the last bit of float rounding, which batching can move:
see the tests). A diffusion model does not know where it drew the text or the subject:
results carry neither, and the annotate stages measure them.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from itertools import groupby
from pathlib import Path
from typing import Any

from datapipe.backends.base import RenderResult
from datapipe.errors import DatapipeError, MissingDependencyError
from datapipe.recipe import LoraConfig, QwenImageConfig
from datapipe.records import PromptSpec

OFFICIAL_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1328, 1328),
    "16:9": (1664, 928),
    "9:16": (928, 1664),
    "4:3": (1472, 1104),
    "3:4": (1104, 1472),
    "3:2": (1584, 1056),
    "2:3": (1056, 1584),
}
"""(width, height) per aspect ratio, from the Qwen-Image model card, except 4:3 and 3:4: the
card lists 1472x1140 and 1140x1472, and 1140 is not a multiple of the pipeline's 16 px (it
warns and renders 1136); 1104, as later copies of the card's example give, keeps the
multiple. Set with `image.sizes`."""

INSTALL_FIX = "pip install torch==2.14.1 torchvision==0.29.1, then pip install 'datapipe[models]'"
LORA_FIX = "pip install peft (diffusers loads LoRA weights through it)"
EMPTY_NEGATIVE = " "
"""What the Qwen-Image examples pass as an empty negative prompt to keep true CFG on."""

LIGHTNING_SCHEDULER: dict[str, Any] = {
    # From ModelTC/Qwen-Image-Lightning, generate_with_diffusers.py (the settings its
    # model card gives for diffusers): the LoRA was distilled with a fixed shift of 3,
    # so the dynamic shift is pinned to log(3) at every resolution (base and max equal,
    # exponential time shift), with no terminal shift and no static shift on top.
    "base_image_seq_len": 256,
    "max_image_seq_len": 8192,
    "base_shift": 1.0986122886681098,  # math.log(3)
    "max_shift": 1.0986122886681098,  # math.log(3)
    "use_dynamic_shifting": True,
    "time_shift_type": "exponential",
    "shift": 1.0,
    "shift_terminal": None,
    "invert_sigmas": False,
    "stochastic_sampling": False,
    "use_karras_sigmas": False,
    "use_exponential_sigmas": False,
    "use_beta_sigmas": False,
}


def lora_name(lora: LoraConfig) -> str:
    if lora.weight_name:
        return Path(lora.weight_name).stem
    path = Path(lora.path)
    return path.stem if path.suffix else path.name


def _diffusers_version() -> str:
    try:
        return metadata.version("diffusers")
    except metadata.PackageNotFoundError:
        return "missing"


class QwenImageRenderer:
    """Renders PromptSpecs with a local Qwen-Image diffusers pipeline."""

    def __init__(self, config: QwenImageConfig) -> None:
        self.config = config
        self.pipe: Any = None
        self.torch: Any = None
        self.device: Any = None
        self.size_multiple = 16
        """The VAE scale factor times 2 (patches of 2x2 latents); read from the model."""
        self.version = self._version(_diffusers_version())

    # -- settings ---------------------------------------------------------------------

    @property
    def steps(self) -> int:
        return self.config.lora.steps if self.config.lora else self.config.steps

    @property
    def true_cfg_scale(self) -> float:
        lora = self.config.lora
        return lora.true_cfg_scale if lora else self.config.true_cfg_scale

    def _version(self, diffusers_version: str) -> str:
        model = Path(self.config.model).name or self.config.model
        text = f"qwen-image:{model}@diffusers-{diffusers_version}"
        if self.config.lora:
            text += f"+lora:{lora_name(self.config.lora)}"
        return text

    # -- loading ----------------------------------------------------------------------

    def load(self) -> None:
        if self.pipe is not None:
            return
        model_dir = self._check_model_dir()
        # Never the hub: the model is a local directory, and everything below loads with
        # local_files_only. HF_HUB_OFFLINE also covers any lookup a component might add.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch, diffusers = self._import()
        device = self._check_device(torch)
        dtype = getattr(torch, self.config.dtype)
        # diffusers >= 0.42 renamed `torch_dtype` to `dtype` (the old name still works,
        # with a deprecation warning on every load).
        dtype_key = "dtype" if _at_least(diffusers.__version__, (0, 42)) else "torch_dtype"
        options: dict[str, Any] = {dtype_key: dtype, "low_cpu_mem_usage": True}
        if not self.config.cpu_offload:
            # Each weight goes from the safetensors files straight to the device, instead of
            # the whole pipeline (57.7 GB in bf16) first sitting in the worker's host memory,
            # which the GPU worker's memory limit would have to hold on top of the object store.
            options["device_map"] = str(device)
        try:
            pipe = diffusers.QwenImagePipeline.from_pretrained(
                str(model_dir), local_files_only=True, **options
            )
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise DatapipeError(
                f"cannot load a Qwen-Image pipeline from {model_dir}: {_one_line(exc)}",
                where="stages.render.qwen_image.model",
                fix="point it at a complete local QwenImagePipeline directory "
                "(model_index.json, transformer/, vae/, text_encoder/, tokenizer/, scheduler/)",
            ) from None
        if self.config.lora:
            self._load_lora(pipe, diffusers, self.config.lora)
        if self.config.cpu_offload:
            pipe.enable_model_cpu_offload(device=device)
        pipe.set_progress_bar_config(disable=True)
        self.size_multiple = pipe.vae_scale_factor * 2
        self.torch = torch
        self.device = device
        self.pipe = pipe
        self.version = self._version(diffusers.__version__)

    def _check_model_dir(self) -> Path:
        path = Path(self.config.model).expanduser()
        where = "stages.render.qwen_image.model"
        if not path.is_dir():
            raise MissingDependencyError(
                f"Qwen-Image model directory {path} does not exist",
                where=where,
                fix="download the model once (e.g. `hf download Qwen/Qwen-Image --local-dir "
                "DIR`) and set the path to DIR; the hub is never contacted at render time",
            )
        index = path / "model_index.json"
        try:
            class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
        except (OSError, ValueError, AttributeError):
            raise MissingDependencyError(
                f"{path} is not a diffusers pipeline directory (no readable model_index.json)",
                where=where,
                fix="point it at the folder that holds model_index.json "
                "(a QwenImagePipeline saved with save_pretrained or a Qwen/Qwen-Image snapshot)",
            ) from None
        if not str(class_name).startswith("QwenImage"):
            raise DatapipeError(
                f"{path} holds a {class_name or 'unnamed'} pipeline, not a Qwen-Image one",
                where=where,
                fix="point it at a QwenImagePipeline directory",
            )
        return path

    @staticmethod
    def _import() -> tuple[Any, Any]:
        try:
            import torch
        except ImportError:
            raise MissingDependencyError(
                "the qwen_image renderer needs torch", fix=INSTALL_FIX
            ) from None
        try:
            import diffusers
            import transformers  # noqa: F401  (the text encoder and tokenizer)
        except ImportError as exc:
            raise MissingDependencyError(
                f"the qwen_image renderer needs diffusers and transformers ({exc.name or exc} "
                "is missing)",
                fix=INSTALL_FIX,
            ) from None
        if not hasattr(diffusers, "QwenImagePipeline"):
            raise MissingDependencyError(
                f"diffusers {diffusers.__version__} has no QwenImagePipeline",
                fix="pip install -U 'datapipe[models]' (diffusers >= 0.35)",
            )
        return torch, diffusers

    def _check_device(self, torch: Any) -> Any:
        name = self.config.device
        where = "stages.render.qwen_image.device"
        try:
            device = torch.device(name)
        except RuntimeError:
            raise DatapipeError(
                f"unknown torch device {name!r}", where=where, fix="use cuda, cuda:N or cpu"
            ) from None
        if device.type == "cuda":
            if not torch.cuda.is_available():
                raise DatapipeError(
                    f"device {name!r} requested but CUDA is not available "
                    f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'})",
                    where=where,
                    fix="run the render stage on a GPU worker, or set device: cpu",
                )
            count = torch.cuda.device_count()
            if device.index is not None and device.index >= count:
                raise DatapipeError(
                    f"device {name!r} requested but only {count} CUDA device(s) are visible",
                    where=where,
                    fix="use cuda (the device Ray assigned) or an index below the count",
                )
        elif self.config.cpu_offload:
            raise DatapipeError(
                f"cpu_offload needs a CUDA device, not {name!r}",
                where="stages.render.qwen_image.cpu_offload",
                fix="set cpu_offload: false",
            )
        return device

    @staticmethod
    def _load_lora(pipe: Any, diffusers: Any, lora: LoraConfig) -> None:
        where = "stages.render.qwen_image.lora.path"
        path = Path(lora.path).expanduser()
        weight_name = lora.weight_name
        if path.is_file():
            path, weight_name = path.parent, weight_name or path.name
        if not path.is_dir() or (weight_name and not (path / weight_name).is_file()):
            shown = path / weight_name if weight_name else path
            raise MissingDependencyError(
                f"LoRA weights {shown} do not exist",
                where=where,
                fix="download them once and set lora.path (and lora.weight_name) to the local "
                "file; the hub is never contacted at render time",
            )
        # Lightning's scheduler settings (see LIGHTNING_SCHEDULER) replace the base ones.
        pipe.scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(
            pipe.scheduler.config, **LIGHTNING_SCHEDULER
        )
        try:
            pipe.load_lora_weights(str(path), weight_name=weight_name, local_files_only=True)
        except ValueError as exc:
            if "peft" in str(exc).lower():
                raise MissingDependencyError(
                    "loading a LoRA needs the peft package", fix=LORA_FIX
                ) from None
            raise DatapipeError(
                f"cannot load LoRA {path}: {_one_line(exc)}",
                where=where,
                fix="use a Qwen-Image LoRA in diffusers or ComfyUI/kohya format",
            ) from None
        except OSError as exc:
            raise DatapipeError(
                f"cannot load LoRA {path}: {_one_line(exc)}",
                where=where,
                fix="set lora.weight_name to the .safetensors file in that directory",
            ) from None
        # Fused into the transformer weights: no LoRA matmuls left in the 20B forward.
        pipe.fuse_lora()
        pipe.unload_lora_weights()

    # -- rendering --------------------------------------------------------------------

    def render_batch(self, specs: list[PromptSpec]) -> list[RenderResult]:
        for spec in specs:
            self._check_size(spec)
        if not specs:
            return []
        self.load()
        results: list[RenderResult | None] = [None] * len(specs)
        order = sorted(range(len(specs)), key=lambda i: (specs[i].width, specs[i].height, i))
        for _, same_size in groupby(order, key=lambda i: (specs[i].width, specs[i].height)):
            indices = list(same_size)
            for start in range(0, len(indices), self.config.batch_size):
                chunk = indices[start : start + self.config.batch_size]
                images = self._call([specs[i] for i in chunk])
                for i, image in zip(chunk, images, strict=True):
                    results[i] = RenderResult(image, None, None)
        return [r for r in results if r is not None]  # every index was filled above

    def render(self, spec: PromptSpec) -> RenderResult:
        return self.render_batch([spec])[0]

    def _check_size(self, spec: PromptSpec) -> None:
        multiple = self.size_multiple
        if spec.width % multiple or spec.height % multiple or spec.width <= 0 or spec.height <= 0:
            raise DatapipeError(
                f"size {spec.width}x{spec.height} is not a multiple of {multiple} "
                "(the VAE scale factor times 2)",
                where=f"spec {spec.spec_id}",
                fix=f"use multiples of {multiple}, e.g. OFFICIAL_SIZES in image.sizes",
            )

    def _call(self, specs: list[PromptSpec]) -> list[Any]:
        torch = self.torch
        spec = specs[0]
        generators = [torch.Generator(self.device).manual_seed(s.seed) for s in specs]
        kwargs: dict[str, Any] = {}
        if self.true_cfg_scale > 1:
            # Without a negative prompt diffusers silently turns true CFG off.
            kwargs["negative_prompt"] = [s.negative_prompt or EMPTY_NEGATIVE for s in specs]
        output = self.pipe(
            prompt=[s.prompt for s in specs],
            true_cfg_scale=self.true_cfg_scale,
            num_inference_steps=self.steps,
            width=spec.width,
            height=spec.height,
            generator=generators,
            output_type="pil",
            **kwargs,
        )
        return [image.convert("RGB") for image in output.images]


def _at_least(version: str, minimum: tuple[int, int]) -> bool:
    parts = []
    for part in version.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts) >= minimum


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
