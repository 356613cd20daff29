"""`datapipe doctor`: can this recipe run here? Checked before any GPU second is spent.

For each stage's backend: the packages it imports, the local weight paths it loads,
the environment variables holding API keys (by name: the value is never shown), and
the devices it asks for. Each missing piece comes with the command or setting that
fixes it. Runs use the same checks (without devices, since the driver of a cluster
job rarely has the workers' GPUs) and refuse to start when one fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from datapipe.backends.clip_openclip import english_only, local_dir, unknown_characters
from datapipe.backends.clip_openclip import expected_files as clip_files
from datapipe.backends.ocr_paddle import PADDLE_ENV, PADDLE_PINS, worker_env
from datapipe.backends.sam2_subject import expected_files as sam2_files
from datapipe.errors import DatapipeError
from datapipe.libraries import LoadedRecipe, cjk_characters

if TYPE_CHECKING:
    from datapipe.recipe import ClipStageConfig, PaddleOcrConfig

MODELS_INSTALL = "pip install torch==2.14.1 torchvision==0.29.1 && pip install 'datapipe[models]'"
SAM2_INSTALL = "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2"
API_INSTALL = "pip install 'datapipe[api]'"
PADDLE_IMPORT_TIMEOUT_S = 120.0
MIN_TOKENIZER_COVERAGE = 0.99
QWEN_IMAGE_FILES = (
    ("model_index.json", "the pipeline's parts"),
    ("transformer/config.json", "MMDiT config"),
    ("text_encoder/config.json", "Qwen2.5-VL text encoder config"),
    ("tokenizer/tokenizer_config.json", "text encoder tokenizer settings"),
    ("tokenizer/vocab.json | tokenizer/tokenizer.json", "text encoder tokenizer vocabulary"),
    ("tokenizer/merges.txt | tokenizer/tokenizer.json", "text encoder tokenizer merges"),
    ("vae/config.json", "VAE config"),
    ("scheduler/scheduler_config.json", "scheduler config"),
)
"""The Qwen-Image hub repository's layout, as diffusers' from_pretrained reads it
(`a | b`: one of them; a tokenizer saved by transformers 5 has only tokenizer.json)."""
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # a rec inference.yml: ~18k chars


@dataclass
class Finding:
    stage: str
    what: str
    ok: bool
    detail: str
    fix: str = ""


class Doctor:
    def __init__(self, loaded: LoadedRecipe, devices: bool = True) -> None:
        self.loaded = loaded
        self.devices = devices
        self.findings: list[Finding] = []

    def package(self, stage: str, module: str, fix: str) -> bool:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # the parent of a dotted name (google.genai) is missing
            found = False
        detail = f"python package {module!r} " + ("importable" if found else "not installed")
        self.findings.append(
            Finding(stage, f"package {module}", found, detail, "" if found else fix)
        )
        return found

    def path(self, stage: str, field: str, value: str | None, kind: str = "any") -> None:
        if value is None:
            self.findings.append(
                Finding(stage, field, False, f"{field} is not set", f"set {field} in the recipe")
            )
            return
        path = Path(value)
        ok = path.is_dir() if kind == "dir" else path.exists()
        if ok and kind == "diffusers":
            ok = (path / "model_index.json").is_file()
        expected = {"dir": "folder", "diffusers": "diffusers model folder (model_index.json)"}
        detail = f"{field} = {value}: " + (
            "found" if ok else f"no {expected.get(kind, 'file or folder')} there"
        )
        fix = "" if ok else f"put the weights at {value} (they are never downloaded) or fix {field}"
        self.findings.append(Finding(stage, field, ok, detail, fix))

    def files(self, stage: str, field: str, expected: list[tuple[str, str]]) -> None:
        """One finding per model file, named with what it is: a folder that holds the
        weights but not their config or tokenizer fails here, not in a worker."""
        for paths, what in expected:
            ok = any(Path(p).expanduser().is_file() for p in paths.split(" | "))
            detail = f"{what}, for {field}: " + ("found" if ok else "missing")
            fix = "" if ok else "copy it there on every node (models are never downloaded)"
            self.findings.append(Finding(stage, paths, ok, detail, fix))

    def env(self, stage: str, variable: str) -> None:
        ok = bool(os.environ.get(variable))
        detail = f"environment variable {variable} " + ("is set" if ok else "is not set")
        fix = "" if ok else f"export {variable}=... (keys are read from the environment only)"
        self.findings.append(Finding(stage, f"env {variable}", ok, detail, fix))

    def device(self, stage: str, device: str) -> None:
        if not self.devices or not device.startswith("cuda"):
            return
        if importlib.util.find_spec("torch") is None:
            return  # the package finding already says what to install
        import torch

        ok = torch.cuda.is_available()
        detail = f"device {device}: " + (
            f"{torch.cuda.device_count()} CUDA device(s)" if ok else "no CUDA device here"
        )
        fix = "" if ok else "run on a GPU node, or set the stage's device to cpu for a test"
        self.findings.append(Finding(stage, f"device {device}", ok, detail, fix))

    def check(self) -> list[Finding]:
        stages = self.loaded.recipe.stages
        if stages.prompt.backend == "openai":
            self.package("prompt", "openai", API_INSTALL)
            self.package("prompt", "tenacity", API_INSTALL)
            self.env("prompt", stages.prompt.openai.api_key_env)
        render = stages.render
        if render.backend == "qwen_image":
            config = render.qwen_image
            for module in ("torch", "diffusers", "transformers"):
                self.package("render", module, MODELS_INSTALL)
            self.path("render", "stages.render.qwen_image.model", config.model, "diffusers")
            folder = Path(config.model)
            self.files(
                "render",
                "stages.render.qwen_image.model",
                [
                    (" | ".join(str(folder / n) for n in names.split(" | ")), what)
                    for names, what in QWEN_IMAGE_FILES
                ],
            )
            if config.lora:
                self.path("render", "stages.render.qwen_image.lora.path", config.lora.path)
            self.device("render", config.device)
        else:
            self.package("render", "PIL", "pip install pillow")
            self._fonts("render", ("bold", "regular"))
        if stages.ocr.backend == "paddleocr":
            self._paddleocr(stages.ocr.paddleocr)
        else:
            self.package("ocr", "rapidocr", "pip install 'rapidocr>=3.4,<4'")
            self.package("ocr", "onnxruntime", "pip install onnxruntime")
        # every ocr.glyph_* score comes from the glyph check, which draws the references
        if any(r.score.startswith("ocr.glyph_") for r in self.loaded.recipe.thresholds.values()):
            from datapipe.fonts import LATIN_FACES

            self._fonts("ocr", ("bold", "regular", *LATIN_FACES))  # the glyphs' references
            self._shaping()
        if stages.subject.backend == "sam2":
            config = stages.subject.sam2
            for module in ("torch", "transformers"):
                self.package("subject", module, MODELS_INSTALL)
            self.package("subject", "sam2", SAM2_INSTALL)
            self.path("subject", "stages.subject.sam2.checkpoint", config.checkpoint)
            self.path("subject", "stages.subject.sam2.detector", config.detector, "dir")
            self.files("subject", "stages.subject.sam2", sam2_files(config))
            self.device("subject", config.device)
        if stages.clip.enabled:
            for module in ("torch", "open_clip"):
                self.package("clip", module, MODELS_INSTALL)
            self.files("clip", "stages.clip.model", clip_files(stages.clip))
            self._tokenizer_coverage(stages.clip)
            self.device("clip", stages.clip.device)
        bench = self.loaded.recipe.bench
        if bench is not None and bench.judge.backend == "gemini":
            self.package("bench", "google.genai", API_INSTALL)
            self.package("bench", "tenacity", API_INSTALL)
            self.env("bench", bench.judge.gemini.api_key_env)
        return self.findings

    def _tokenizer_coverage(self, config: ClipStageConfig) -> None:
        """The configured CLIP tokenizer must read the libraries' Chinese: counted with the
        real files where they are on this node."""
        english = english_only(config)
        if english and self.loaded.recipe.languages.get("zh"):
            detail = f"zh posters would be scored by {english}: {config.model}"
            fix = "use a multilingual CLIP, e.g. local-dir: with xlm-roberta-large-ViT-H-14"
            self.findings.append(Finding("clip", "reads Chinese", False, detail, fix))
            return
        folder = local_dir(config.model)
        if folder is None or not any(p.is_file() for p in folder.glob("tokenizer*")):
            return
        if importlib.util.find_spec("transformers") is None:
            return  # the package finding already says what to install
        characters = cjk_characters(self.loaded.recipe.libraries)
        unknown = unknown_characters(folder, characters)
        share = 1 - len(unknown) / max(1, len(characters))
        ok = share >= MIN_TOKENIZER_COVERAGE
        detail = (
            f"{len(characters) - len(unknown)} of {len(characters)} Chinese characters of the "
            f"libraries tokenize without the unknown token ({share:.1%})"
            + ("" if ok else f"; unknown: {''.join(unknown[:20])}")
        )
        fix = "" if ok else "use a multilingual CLIP (e.g. xlm-roberta-large-ViT-H-14)"
        self.findings.append(Finding("clip", "tokenizer coverage", ok, detail, fix))

    def _paddleocr(self, config: PaddleOcrConfig) -> None:
        """PaddleOCR runs under another virtualenv's python: check that one, not this one."""
        field = "stages.ocr.paddleocr.python"
        python = Path(config.python).expanduser()
        if not python.is_file() or not os.access(python, os.X_OK):
            problem = "does not exist" if not python.exists() else "is not an executable file"
            fix = f"create the paddle env ({PADDLE_ENV}) or fix {field}"
            self.findings.append(
                Finding("ocr", field, False, f"{field} = {python}: {problem}", fix)
            )
        else:
            self.findings.append(Finding("ocr", field, True, f"{field} = {python}: found"))
            self._paddle_imports(str(python))
        for kind in ("det", "rec"):
            self._paddle_model(
                f"stages.ocr.paddleocr.{kind}_model_dir",
                getattr(config, f"{kind}_model_dir"),
                f"stages.ocr.paddleocr.{kind}_model_name",
                getattr(config, f"{kind}_model_name"),
            )

    def _paddle_imports(self, python: str) -> None:
        what = "package paddleocr (paddle env)"
        try:
            done = subprocess.run(
                [python, "-c", "import paddleocr, paddle"],
                capture_output=True,
                text=True,
                env=worker_env(),
                timeout=PADDLE_IMPORT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            detail = f"`import paddleocr` did not finish within {PADDLE_IMPORT_TIMEOUT_S:g} s"
            self.findings.append(Finding("ocr", what, False, detail, "check the paddle env"))
            return
        except OSError as exc:
            detail = f"cannot run {python}: {exc}"
            self.findings.append(Finding("ocr", what, False, detail, "check the paddle env"))
            return
        if done.returncode == 0:
            self.findings.append(Finding("ocr", what, True, f"paddleocr importable in {python}"))
            return
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        error = " ".join(lines[-1].split())[:300] if lines else f"exit code {done.returncode}"
        detail = f"paddleocr does not import in {python}: {error}"
        self.findings.append(
            Finding("ocr", what, False, detail, f"{python} -m pip install {PADDLE_PINS}")
        )

    def _paddle_model(self, field: str, value: str, name_field: str, name: str) -> None:
        """PaddleX reads inference.yml from the directory, and would silently run a model
        under the wrong name's defaults: a mismatch is an error here, before any render."""
        path = Path(value).expanduser()
        fix = f"put the model at {value} (models are never downloaded) or fix {field}"
        if not path.is_dir():
            self.findings.append(
                Finding("ocr", field, False, f"{field} = {value}: no dir there", fix)
            )
            return
        try:
            text = (path / "inference.yml").read_text(encoding="utf-8")
            found = yaml.load(text, Loader=_YAML_LOADER)["Global"]["model_name"]
        except (OSError, yaml.YAMLError, KeyError, TypeError):
            detail = f"{field} = {value}: no PaddleOCR model there (no readable inference.yml)"
            self.findings.append(Finding("ocr", field, False, detail, fix))
            return
        if found != name:
            detail = f"{field} = {value}: holds {found}, but {name_field} is {name}"
            fix = f"set {name_field}: {found}, or point {field} at a {name} model"
            self.findings.append(Finding("ocr", field, False, detail, fix))
            return
        self.findings.append(Finding("ocr", field, True, f"{field} = {value}: {found}"))

    def _fonts(self, area: str, weights: tuple[str, ...]) -> None:
        from datapipe.fonts import font_path

        for weight in weights:
            try:
                path = font_path(weight)
            except DatapipeError as exc:
                self.findings.append(Finding(area, f"font {weight}", False, exc.what, exc.fix))
            else:
                self.findings.append(Finding(area, f"font {weight}", True, f"{path}"))

    def _shaping(self) -> None:
        """A recipe with a rule on glyph shapes needs the CJK font's simplified forms and
        the Latin faces' alternates, which only a shaping layout reaches
        (`datapipe.fonts.shaped`)."""
        from datapipe.fonts import shaping

        what = "regional glyph forms"
        if shaping():
            detail = (
                "Pillow shapes text: CJK glyphs are compared with both regional forms, "
                "Latin letters with alternate designs"
            )
            self.findings.append(Finding("ocr", what, True, detail))
            return
        detail = (
            "Pillow cannot shape text (no libraqm/FriBiDi): the glyph shape rule would "
            "compare simplified glyphs with traditional forms and reject good zh posters "
            "(and a single-storey a with double-storey ones)"
        )
        fix = "install FriBiDi (Debian: apt install libfribidi0), which Pillow's libraqm loads"
        self.findings.append(Finding("ocr", what, False, detail, fix))


def preflight(loaded: LoadedRecipe) -> None:
    """Refuse to start a run that would fail at a stage's setup, with every fix at once."""
    missing = [f for f in Doctor(loaded, devices=False).check() if not f.ok]
    if missing:
        problems = "; ".join(f"{f.stage}: {f.detail} (fix: {f.fix})" for f in missing)
        raise DatapipeError(
            f"{len(missing)} missing: {problems}",
            where=str(loaded.path),
            fix=f"run `datapipe doctor {loaded.path}` for the full report",
        )
