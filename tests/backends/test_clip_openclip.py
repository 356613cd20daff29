"""ClipScorer on tiny random open_clip models loaded from local folders (`local-dir:`).

Two towers: open_clip's BPE text tower, and an XLM-R text tower from transformers (the
multilingual layout of xlm-roberta-large-ViT-H-14). The folders hold exactly what the
cluster's do, so the loading path, the tokenizer and the preprocessing are the real ones.
"""

from __future__ import annotations

import json
import re
import shutil
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT
from tiny_vision import (
    TINY_CLIP_CONFIG,
    TINY_CLIP_PREPROCESS,
    TINY_XLMR_TEXT_CFG,
    build_tiny_clip,
    build_tiny_multilingual_clip,
    poster_image,
    xlmr_style_tokenizer,
)

from datapipe.backends.clip_openclip import ClipScorer, describe, file_digest, token_count
from datapipe.errors import DatapipeError
from datapipe.recipe import ClipStageConfig

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

TEXTS = ["a red apple on a poster", "一张复古风格的海报", "summer music festival"]
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny", seed=0)


@pytest.fixture(scope="module")
def multilingual(tmp_path_factory):
    return build_tiny_multilingual_clip(tmp_path_factory.mktemp("mclip") / "xlmr", seed=0)


def make(folder, device="cpu", batch_size=2) -> ClipScorer:
    config = ClipStageConfig(
        enabled=True, model=f"local-dir:{folder}", device=device, batch_size=batch_size
    )
    return ClipScorer(config)


@pytest.fixture(scope="module")
def scorer(folder):
    s = make(folder)
    s.load()
    return s


@pytest.fixture(scope="module")
def mscorer(multilingual):
    s = make(multilingual)
    s.load()
    return s


@pytest.fixture(scope="module")
def images():
    return [
        poster_image(96, 128, seed=1),
        poster_image(64, 64, seed=2),
        poster_image(150, 100, seed=3).convert("L"),  # grayscale is converted to RGB
    ]


def test_init_loads_nothing(folder):
    s = make(folder)
    assert s.model is None
    assert folder.name in s.version


@pytest.mark.parametrize("which", ["scorer", "mscorer"])
def test_embeddings_have_the_right_shape_and_unit_norm(which, request, images):
    s = request.getfixturevalue(which)
    for emb in (s.encode_images(images), s.encode_texts(TEXTS)):
        assert emb.shape == (3, TINY_CLIP_CONFIG["embed_dim"])
        assert emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_empty_inputs_give_empty_arrays(scorer):
    assert scorer.encode_images([]).shape == (0, 32)
    assert scorer.encode_texts([]).shape == (0, 32)


def test_image_text_is_one_cosine_per_pair(scorer, images):
    sims = scorer.image_text(images, TEXTS)
    assert sims.shape == (3,)
    assert np.all(sims >= -1.0) and np.all(sims <= 1.0)
    expected = np.sum(scorer.encode_images(images) * scorer.encode_texts(TEXTS), axis=1)
    np.testing.assert_allclose(sims, expected, atol=1e-5)
    with pytest.raises(ValueError, match="2 images but 3 texts"):
        scorer.image_text(images[:2], TEXTS)


def test_image_image_cosine(scorer, images):
    emb = scorer.encode_images(images)
    np.testing.assert_allclose(scorer.image_image(emb, emb), 1.0, atol=1e-5)
    sims = scorer.image_image(emb, emb[::-1] * 3.0)  # scale does not matter
    assert sims.shape == (3,)
    assert np.all(np.abs(sims) <= 1.0)
    assert scorer.image_image(emb[0], emb).shape == (3,)  # one row broadcasts


def test_same_input_same_output_and_batching_does_not_matter(scorer, folder, images):
    first = scorer.encode_images(images)
    np.testing.assert_array_equal(first, scorer.encode_images(images))
    one_by_one = make(folder, batch_size=1)
    np.testing.assert_allclose(one_by_one.encode_images(images), first, atol=1e-5)
    np.testing.assert_allclose(
        one_by_one.encode_texts(TEXTS), scorer.encode_texts(TEXTS), atol=1e-5
    )


@pytest.mark.parametrize("which", ["scorer", "mscorer"])
def test_weights_and_preprocessing_come_from_the_folder(which, request):
    s = request.getfixturevalue(which)
    state = torch.load(s.checkpoint, weights_only=True)
    loaded = s.model.state_dict()
    assert all(torch.equal(state[k], loaded[k].cpu()) for k in state)
    normalize = s.preprocess.transforms[-1]
    assert list(normalize.mean) == TINY_CLIP_PREPROCESS["mean"]  # not OpenAI's defaults
    assert list(normalize.std) == TINY_CLIP_PREPROCESS["std"]


def test_another_folder_gives_other_embeddings(scorer, images, tmp_path):
    other = make(build_tiny_clip(tmp_path / "other", seed=1))
    assert not np.allclose(other.encode_images(images), scorer.encode_images(images))


def test_the_multilingual_tokenizer_is_read_from_the_folder(mscorer, multilingual):
    inner = mscorer.tokenizer.tokenizer
    assert Path(inner.name_or_path) == multilingual.resolve()
    assert type(inner).__name__.startswith("XLMRoberta")
    assert mscorer.context_length == TINY_XLMR_TEXT_CFG["context_length"]
    # Chinese is read as characters of the vocabulary, not as unknowns or byte pieces.
    tokens, unknown = token_count(mscorer.tokenizer, "一杯加冰的美式咖啡")
    assert (tokens, unknown) == (9 + 3, 0)  # <s>, the word-start piece, 9 characters, </s>


def test_padding_keeps_every_pixel_of_a_9_16_poster(scorer):
    """Resize on the long side and pad: a centre crop would drop the top and bottom 22%."""
    size = TINY_CLIP_CONFIG["vision_cfg"]["image_size"]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(320, 180, 3), dtype=np.uint8)  # 9:16, portrait
    pixels[:8], pixels[-8:] = (255, 0, 0), (0, 0, 255)  # title and footer bands
    poster = __import__("PIL.Image", fromlist=["Image"]).fromarray(pixels)
    tensor = scorer.preprocess(poster).numpy()
    mean = np.array(TINY_CLIP_PREPROCESS["mean"])[:, None, None]
    std = np.array(TINY_CLIP_PREPROCESS["std"])[:, None, None]
    seen = np.clip((tensor * std + mean) * 255, 0, 255).transpose(1, 2, 0)
    content = np.flatnonzero(seen.sum(axis=(0, 2)) > 0)
    left, right = int(content[0]), int(content[-1]) + 1
    assert right - left == round(size * 180 / 320)  # the whole width, scaled
    assert seen[:, :left].max() == 0 and seen[:, right:].max() == 0  # padding only
    # The first and last rows are the poster's own first and last rows: nothing cut.
    assert np.all(seen[0, left:right, 0] > 200) and np.all(seen[0, left:right, 2] < 60)
    assert np.all(seen[-1, left:right, 2] > 200) and np.all(seen[-1, left:right, 0] < 60)
    expected = np.asarray(poster.resize((right - left, size), resample=3), dtype=float)
    assert np.abs(seen[:, left:right] - expected).mean() < 2.0


def test_the_tokenizer_reads_the_chinese_of_the_libraries_and_templates(tmp_path):
    """>= 99% of the distinct CJK characters of entity_libraries/, style_libraries/ and
    prompts/ tokenize without <unk>, with the real XLM-R tokenizer class over
    PP-OCRv6's general character inventory (independent of our text). What this shows:
    the libraries use common characters and the unknown-token check works; the real
    xlm-roberta-large vocabulary (250k pieces from CC-100) is checked on a node by
    `datapipe doctor`, which runs the same count on the configured folder."""
    text = "".join(
        path.read_text(encoding="utf-8")
        for name in ("entity_libraries", "style_libraries", "prompts")
        for path in sorted((ROOT / name).glob("*.yaml"))
    )
    characters = sorted(set(CJK.findall(text)))
    assert len(characters) > 1000
    tokenizer = xlmr_style_tokenizer(tmp_path)
    unknown = [c for c in characters if tokenizer.unk_token_id in tokenizer(c)["input_ids"]]
    assert len(unknown) / len(characters) <= 0.01, unknown
    # And it does say <unk> for what it does not hold.
    assert tokenizer.unk_token_id in tokenizer("\U0002a6a5")["input_ids"]  # a rare CJK-B glyph


def test_version_names_the_folder_and_open_clip(scorer, folder):
    assert folder.name in scorer.version
    assert metadata.version("open_clip_torch") in scorer.version


def test_run_record_names_model_checkpoint_and_digests(folder):
    record = describe(ClipStageConfig(enabled=True, model=f"local-dir:{folder}"))
    checkpoint = folder / "open_clip_pytorch_model.bin"
    assert record["checkpoint"] == str(checkpoint)
    assert record["sha256"] == file_digest(checkpoint)
    config = json.loads((folder / "open_clip_config.json").read_text())
    assert config["model_cfg"] == TINY_CLIP_CONFIG and record["config_sha256"]


def test_a_folder_without_its_config_is_refused_with_the_layout(folder, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(folder / "open_clip_pytorch_model.bin", bare)
    with pytest.raises(DatapipeError) as err:
        make(bare).load()
    message = str(err.value)
    assert "open_clip_config.json" in message and "QuickGELU" in message
    assert "\n" not in message


def test_a_multilingual_folder_without_its_tokenizer_is_refused(multilingual, tmp_path):
    copy = shutil.copytree(multilingual, tmp_path / "xlmr")
    (copy / "tokenizer.json").unlink()
    with pytest.raises(DatapipeError, match=r"tokenizer\.json or sentencepiece\.bpe\.model"):
        make(copy).load()


def test_a_checkpoint_without_its_config_is_refused_with_a_fix(folder):
    weights = folder / "open_clip_pytorch_model.bin"
    config = ClipStageConfig(model="ViT-B-32", weights=str(weights), device="cpu")
    with pytest.raises(DatapipeError) as err:
        ClipScorer(config).load()
    message = str(err.value)
    assert "without its config" in message and "QuickGELU" in message
    assert "pretrained_tag" in message and "laion2b_s34b_b79k" in message  # tags to pick
    assert "local-dir:" in message


@pytest.mark.parametrize(
    ("tag", "quick_gelu", "mean"),
    [("openai", True, 0.48145466), ("laion2b_s34b_b79k", False, 0.48145466)],
)
def test_a_pretrained_tag_supplies_the_weights_config(folder, tag, quick_gelu, mean):
    import open_clip

    weights = folder / "open_clip_pytorch_model.bin"
    config = ClipStageConfig(model="ViT-B-32", weights=str(weights), pretrained_tag=tag)
    s = ClipScorer(config)
    name, path, preprocess = s._resolve(open_clip)
    assert (name, path) == ("ViT-B-32", weights)
    assert s._quick_gelu is quick_gelu
    assert preprocess["mean"][0] == pytest.approx(mean)
    assert tag in s.version


def test_an_unknown_tag_is_refused(folder):
    weights = folder / "open_clip_pytorch_model.bin"
    config = ClipStageConfig(model="ViT-B-32", weights=str(weights), pretrained_tag="nope")
    with pytest.raises(DatapipeError, match=r"no pretrained tag 'nope'.*openai"):
        ClipScorer(config).load()


def test_missing_weights_file_is_a_one_line_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "clip.pt"
    config = ClipStageConfig(model="ViT-B-32", weights=str(missing), pretrained_tag="openai")
    with pytest.raises(DatapipeError) as err:
        ClipScorer(config).load()
    assert str(missing) in str(err.value)
    assert "\n" not in str(err.value)


def test_unset_weights_is_an_error():
    config = ClipStageConfig(enabled=True, model="ViT-B-32", weights=None, device="cpu")
    with pytest.raises(DatapipeError, match=r"stages\.clip\.weights"):
        ClipScorer(config).load()


def test_a_hub_name_is_refused():
    config = ClipStageConfig(model="hf-hub:org/model", device="cpu")
    with pytest.raises(DatapipeError, match="hub"):
        ClipScorer(config).load()


def test_wrong_architecture_for_the_checkpoint_is_one_line(folder, tmp_path):
    wrong = shutil.copytree(folder, tmp_path / "wrong")
    data = json.loads((wrong / "open_clip_config.json").read_text())
    data["model_cfg"]["embed_dim"] = 16
    (wrong / "open_clip_config.json").write_text(json.dumps(data))
    with pytest.raises(DatapipeError) as err:
        make(wrong).load()
    assert "open_clip_pytorch_model.bin" in str(err.value)
    assert "\n" not in str(err.value)


def test_train_recipe_scores_with_a_multilingual_model():
    clip = yaml.safe_load((ROOT / "pipelines" / "train.yaml").read_text())["stages"]["clip"]
    assert clip["model"].startswith("local-dir:")
    assert "xlm-roberta" in clip["model"] or "siglip2" in clip["model"].lower()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda_fails_at_load(folder):
    with pytest.raises(DatapipeError, match="CUDA is not available"):
        make(folder, device="cuda").load()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("which", ["folder", "multilingual"])
def test_tiny_clip_on_cuda_gives_the_same_shapes(which, request, images):
    where = request.getfixturevalue(which)
    cpu, gpu = make(where), make(where, device="cuda")
    img, txt = gpu.encode_images(images), gpu.encode_texts(TEXTS)
    assert img.shape == txt.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(img, cpu.encode_images(images), atol=1e-2)
    assert gpu.image_text(images, TEXTS).shape == (3,)
