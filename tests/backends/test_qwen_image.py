"""The Qwen-Image renderer on a tiny random pipeline, loaded the way a real one is.

The pipeline is built from the real diffusers/transformers classes (see tiny_qwen.py),
saved to a folder and loaded with `QwenImagePipeline.from_pretrained(...,
local_files_only=True)`: only the sizes of the models differ from a cluster run.
"""

from __future__ import annotations

import builtins
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datapipe.backends.qwen_image import OFFICIAL_SIZES, QwenImageRenderer
from datapipe.errors import DatapipeError, MissingDependencyError
from datapipe.recipe import LoraConfig, QwenImageConfig
from datapipe.records import CopyLine, PromptSpec

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from tiny_qwen import LORA_WEIGHT_NAME, save_tiny_lora, save_tiny_qwen_image  # noqa: E402


def make_spec(
    n: int,
    width: int = 64,
    height: int = 64,
    seed: int = 7,
    prompt: str = "A minimalist poster of a red apple, title “FRESH”",
    negative_prompt: str = "blurry, low quality",
) -> PromptSpec:
    return PromptSpec(
        spec_id=f"spec-{n}",
        group_id=f"group-{n}",
        group_kind="single",
        member=0,
        language="en",
        theme="food",
        entity_id="apple",
        entity_name="apple",
        entity_description="a red apple",
        entity_shape="round",
        entity_color="red",
        style_id="minimalist",
        style_name="Minimalist",
        layout_id="centered",
        aspect_ratio="1:1",
        width=width,
        height=height,
        copy=[CopyLine("title", "FRESH")],
        prompt=prompt,
        negative_prompt=negative_prompt,
        seed=seed,
    )


def pixels(result) -> np.ndarray:
    return np.asarray(result.image, dtype=np.int16)


@pytest.fixture(scope="module", autouse=True)
def _one_thread_and_hub_env():
    """One torch thread: these models are tiny, and on a busy 2-core machine two threads
    make each render 3-4x slower. load() sets HF_HUB_OFFLINE when unset: restore it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    before = os.environ.get("HF_HUB_OFFLINE")
    yield
    torch.set_num_threads(threads)
    if before is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = before


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_tiny_qwen_image(tmp_path_factory.mktemp("tiny-qwen") / "Qwen-Image-tiny")


def cpu_config(model_dir: Path, **overrides) -> QwenImageConfig:
    values = {
        "model": str(model_dir),
        "device": "cpu",
        "dtype": "float32",
        "steps": 2,
        "true_cfg_scale": 4.0,
        "batch_size": 4,
        **overrides,
    }
    return QwenImageConfig(**values)


@pytest.fixture(scope="module")
def renderer(model_dir) -> QwenImageRenderer:
    renderer = QwenImageRenderer(cpu_config(model_dir))
    renderer.load()
    return renderer


# -- rendering ----------------------------------------------------------------------------


def test_renders_each_spec_at_its_size_in_spec_order(model_dir):
    renderer = QwenImageRenderer(cpu_config(model_dir, batch_size=2))
    sizes = [(64, 64), (96, 64), (64, 96), (64, 64), (96, 64), (64, 64)]
    specs = [make_spec(i, w, h, seed=i) for i, (w, h) in enumerate(sizes)]
    results = renderer.render_batch(specs)  # loads on first use
    assert [r.image.size for r in results] == sizes
    assert all(r.image.mode == "RGB" for r in results)
    assert all(r.subject_mask is None and r.truth is None for r in results)
    # Results follow the specs, not the size groups: each equals its spec rendered alone.
    assert np.array_equal(pixels(results[3]), pixels(renderer.render_batch([specs[3]])[0]))
    assert renderer.version.startswith("qwen-image:Qwen-Image-tiny@diffusers-")
    assert renderer.render_batch([]) == []


def test_weights_load_straight_to_the_device_not_through_host_memory_first(renderer):
    # device_map places each weight on the device as it is read (on a GPU worker: 57.7 GB
    # that never sits in host memory); the pipeline reports where it put its components.
    assert renderer.pipe.hf_device_map == "cpu"
    assert renderer.pipe.transformer.device.type == "cpu"


def test_same_seed_same_pixels_other_seed_other_pixels(renderer):
    first = renderer.render_batch([make_spec(0, seed=11)])[0]
    again = renderer.render_batch([make_spec(0, seed=11)])[0]
    other = renderer.render_batch([make_spec(0, seed=12)])[0]
    assert np.array_equal(pixels(first), pixels(again))
    assert np.abs(pixels(first) - pixels(other)).mean() > 1.0


def test_a_specs_pixels_do_not_depend_on_its_batch_mates(renderer):
    # Different prompt lengths: the batched text embeddings are padded and masked.
    specs = [
        make_spec(0, seed=3),
        make_spec(1, seed=4, prompt="short", negative_prompt=""),
        make_spec(2, seed=5, prompt="A retro summer festival poster " * 6),
        make_spec(3, seed=3),  # same as the first: a batch mate with the same seed
    ]
    batched = renderer.render_batch(specs)
    assert np.array_equal(pixels(batched[0]), pixels(batched[3]))
    for spec, in_batch in zip(specs[:3], batched, strict=False):
        alone = renderer.render_batch([spec])[0]
        # Measured bit-identical on CPU; allow one level of rounding for other kernels.
        assert np.abs(pixels(alone) - pixels(in_batch)).max() <= 1, spec.spec_id


def encoded_prompts(renderer: QwenImageRenderer, monkeypatch) -> list[list[str]]:
    """Spy on the pipeline: the prompt lists it encodes, positive first, then negative."""
    calls: list[list[str]] = []
    encode = renderer.pipe.encode_prompt

    def spy(*args, **kwargs):
        calls.append(list(kwargs["prompt"]))
        return encode(*args, **kwargs)

    monkeypatch.setattr(renderer.pipe, "encode_prompt", spy)
    return calls


def test_true_cfg_uses_each_specs_negative_prompt(renderer, model_dir, monkeypatch):
    spec = make_spec(0, seed=21)
    other_negative = make_spec(1, seed=21, negative_prompt="text, watermark, logo")
    empty_negative = make_spec(2, seed=21, negative_prompt="")
    calls = encoded_prompts(renderer, monkeypatch)
    with_cfg = renderer.render_batch([spec, other_negative, empty_negative])
    assert calls == [[spec.prompt] * 3, ["blurry, low quality", "text, watermark, logo", " "]]
    # The tiny random model listens to its text only faintly, but it does listen.
    assert not np.array_equal(pixels(with_cfg[0]), pixels(with_cfg[1]))

    no_cfg = QwenImageRenderer(cpu_config(model_dir, true_cfg_scale=1.0))
    no_cfg.load()
    calls = encoded_prompts(no_cfg, monkeypatch)
    plain = no_cfg.render_batch([spec, other_negative])
    assert calls == [[spec.prompt] * 2]  # one forward per step: no negative branch
    assert np.array_equal(pixels(plain[0]), pixels(plain[1]))
    assert not np.array_equal(pixels(plain[0]), pixels(with_cfg[0]))


def test_a_size_off_the_grid_is_refused_before_anything_renders(tmp_path):
    renderer = QwenImageRenderer(cpu_config(tmp_path / "never-loaded"))
    with pytest.raises(DatapipeError, match=r"spec-1: size 72x64 is not a multiple of 16"):
        renderer.render_batch([make_spec(0), make_spec(1, width=72)])
    assert renderer.pipe is None


def test_official_sizes_are_on_the_grid():
    assert len(OFFICIAL_SIZES) == 7
    for ratio, (width, height) in OFFICIAL_SIZES.items():
        assert width % 16 == 0 and height % 16 == 0, ratio
        w, h = (int(x) for x in ratio.split(":"))
        assert abs(width / height - w / h) < 0.02, ratio


# -- loading errors -------------------------------------------------------------------------


def test_a_missing_model_path_is_a_one_line_error_naming_it(tmp_path):
    missing = tmp_path / "models" / "Qwen-Image"
    renderer = QwenImageRenderer(cpu_config(missing))
    with pytest.raises(MissingDependencyError) as info:
        renderer.load()
    message = str(info.value)
    assert str(missing) in message and "fix:" in message
    assert "\n" not in message


def test_a_folder_that_is_not_a_pipeline_is_refused(tmp_path, model_dir):
    with pytest.raises(MissingDependencyError, match=r"model_index\.json") as info:
        QwenImageRenderer(cpu_config(tmp_path)).load()
    assert str(tmp_path) in str(info.value)

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_bytes((model_dir / "model_index.json").read_bytes())
    with pytest.raises(DatapipeError, match="cannot load a Qwen-Image pipeline") as info:
        QwenImageRenderer(cpu_config(broken)).load()
    assert str(broken) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_cuda_fails_at_load(model_dir):
    renderer = QwenImageRenderer(cpu_config(model_dir, device="cuda", dtype="bfloat16"))
    with pytest.raises(DatapipeError, match="CUDA is not available") as info:
        renderer.load()
    assert "device: cpu" in str(info.value)
    assert renderer.pipe is None


@pytest.mark.parametrize("package", ["diffusers", "torch"])
def test_a_missing_package_names_the_extra(model_dir, monkeypatch, package):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == package or name.startswith(package + "."):
            raise ModuleNotFoundError(f"No module named '{package}'", name=package)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependencyError, match=r"datapipe\[models\]") as info:
        QwenImageRenderer(cpu_config(model_dir)).load()
    assert package in str(info.value) and "torch==2.14.1" in str(info.value)


def test_constructing_the_renderer_imports_no_heavy_package():
    code = (
        "import sys\n"
        "from datapipe.backends.qwen_image import QwenImageRenderer\n"
        "from datapipe.recipe import QwenImageConfig\n"
        "r = QwenImageRenderer(QwenImageConfig(model='/nowhere/Qwen-Image'))\n"
        "assert r.version.startswith('qwen-image:Qwen-Image@diffusers-'), r.version\n"
        "heavy = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- LoRA -----------------------------------------------------------------------------------


def test_a_lora_is_loaded_fused_and_sets_steps_cfg_and_scheduler(model_dir, tmp_path):
    pytest.importorskip("peft")
    lora_dir = save_tiny_lora(model_dir, tmp_path / "lightning")
    spec = make_spec(0, seed=5)
    lora = LoraConfig(path=str(lora_dir), weight_name=LORA_WEIGHT_NAME, steps=3)
    renderer = QwenImageRenderer(cpu_config(model_dir, lora=lora))
    assert (renderer.steps, renderer.true_cfg_scale) == (3, 1.0)
    assert renderer.version.endswith("+lora:tiny_lora")
    renderer.load()
    scheduler = renderer.pipe.scheduler.config
    assert scheduler.base_shift == pytest.approx(math.log(3))
    assert scheduler.max_shift == pytest.approx(math.log(3))
    assert scheduler.time_shift_type == "exponential"
    # Fused: the transformer's projections are plain linear layers again.
    assert type(renderer.pipe.transformer.transformer_blocks[0].attn.to_q) is torch.nn.Linear
    first, again = (pixels(renderer.render_batch([spec])[0]) for _ in range(2))
    assert np.array_equal(first, again)

    # The same settings without the LoRA weights give another image: the LoRA is applied.
    no_lora = QwenImageRenderer(cpu_config(model_dir, steps=3, true_cfg_scale=1.0))
    no_lora.load()
    no_lora.pipe.scheduler = type(renderer.pipe.scheduler).from_config(scheduler)
    assert np.abs(pixels(no_lora.render_batch([spec])[0]) - first).mean() > 0.5

    # A path to the weights file itself works too.
    as_file = LoraConfig(path=str(lora_dir / LORA_WEIGHT_NAME))
    QwenImageRenderer(cpu_config(model_dir, lora=as_file)).load()

    missing = LoraConfig(path=str(tmp_path / "nope.safetensors"))
    with pytest.raises(MissingDependencyError, match=r"nope\.safetensors"):
        QwenImageRenderer(cpu_config(model_dir, lora=missing)).load()


# -- GPU ------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tiny_pipeline_on_cuda_in_bfloat16_is_deterministic(model_dir):
    renderer = QwenImageRenderer(cpu_config(model_dir, device="cuda", dtype="bfloat16"))
    renderer.load()
    assert renderer.pipe.transformer.dtype == torch.bfloat16
    assert renderer.pipe.hf_device_map == "cuda"
    assert renderer.pipe.transformer.device.type == "cuda"
    specs = [make_spec(0, seed=1), make_spec(1, 96, 64, seed=2), make_spec(2, seed=3)]
    first = renderer.render_batch(specs)
    again = renderer.render_batch(specs)
    assert [r.image.size for r in first] == [(64, 64), (96, 64), (64, 64)]
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(pixels(a), pixels(b))
    assert np.abs(pixels(first[0]) - pixels(first[2])).mean() > 1.0
