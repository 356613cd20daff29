"""ClipScorer on a tiny random open_clip model loaded from a local checkpoint file."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest
from tiny_vision import TINY_CLIP_CONFIG, TINY_CLIP_NAME, build_tiny_clip, poster_image

from datapipe.backends.clip_openclip import ClipScorer
from datapipe.errors import DatapipeError
from datapipe.recipe import ClipStageConfig

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

TEXTS = ["a red apple on a poster", "一张复古风格的海报", "summer music festival"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip"), seed=0)


def make(weights, device="cpu", batch_size=2, model_config=TINY_CLIP_CONFIG) -> ClipScorer:
    config = ClipStageConfig(
        enabled=True,
        model=TINY_CLIP_NAME,
        weights=str(weights),
        device=device,
        batch_size=batch_size,
    )
    return ClipScorer(config, model_config=model_config)


@pytest.fixture(scope="module")
def scorer(weights):
    s = make(weights)
    s.load()
    return s


@pytest.fixture(scope="module")
def images():
    return [
        poster_image(96, 128, seed=1),
        poster_image(64, 64, seed=2),
        poster_image(150, 100, seed=3).convert("L"),  # grayscale is converted to RGB
    ]


def test_init_loads_nothing(weights):
    s = make(weights)
    assert s.model is None
    assert TINY_CLIP_NAME in s.version


def test_embeddings_have_the_right_shape_and_unit_norm(scorer, images):
    for emb in (scorer.encode_images(images), scorer.encode_texts(TEXTS)):
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


def test_same_input_same_output_and_batching_does_not_matter(scorer, weights, images):
    first = scorer.encode_images(images)
    np.testing.assert_array_equal(first, scorer.encode_images(images))
    one_by_one = make(weights, batch_size=1)
    np.testing.assert_allclose(one_by_one.encode_images(images), first, atol=1e-5)
    np.testing.assert_allclose(
        one_by_one.encode_texts(TEXTS), scorer.encode_texts(TEXTS), atol=1e-5
    )


def test_weights_come_from_the_checkpoint(scorer, weights, images, tmp_path):
    other = make(build_tiny_clip(tmp_path, seed=1))
    assert not np.allclose(other.encode_images(images), scorer.encode_images(images))
    state = torch.load(weights, weights_only=True)
    loaded = scorer.model.state_dict()
    assert all(torch.equal(state[k], loaded[k].cpu()) for k in state)


def test_version_names_model_weights_and_open_clip(scorer, weights):
    assert TINY_CLIP_NAME in scorer.version
    assert weights.name in scorer.version
    assert metadata.version("open_clip_torch") in scorer.version


def test_missing_weights_file_is_a_one_line_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "clip.pt"
    with pytest.raises(DatapipeError) as err:
        make(missing).load()
    assert str(missing) in str(err.value)
    assert "\n" not in str(err.value)


def test_unset_weights_is_an_error():
    config = ClipStageConfig(enabled=True, model="ViT-B-32", weights=None, device="cpu")
    with pytest.raises(DatapipeError, match=r"stages\.clip\.weights"):
        ClipScorer(config).load()


def test_a_hub_name_is_refused(weights):
    config = ClipStageConfig(model="hf-hub:org/model", weights=str(weights), device="cpu")
    with pytest.raises(DatapipeError, match="hub"):
        ClipScorer(config).load()


def test_wrong_architecture_for_the_checkpoint_is_one_line(weights):
    wrong = {**TINY_CLIP_CONFIG, "embed_dim": 16}
    config = ClipStageConfig(model="datapipe-tiny-clip-16", weights=str(weights), device="cpu")
    with pytest.raises(DatapipeError) as err:
        ClipScorer(config, model_config=wrong).load()
    assert str(weights) in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda_fails_at_load(weights):
    with pytest.raises(DatapipeError, match="CUDA is not available"):
        make(weights, device="cuda").load()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tiny_clip_on_cuda_gives_the_same_shapes(scorer, weights, images):
    gpu = make(weights, device="cuda")
    img, txt = gpu.encode_images(images), gpu.encode_texts(TEXTS)
    assert img.shape == txt.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(img, scorer.encode_images(images), atol=1e-2)
    assert gpu.image_text(images, TEXTS).shape == (3,)
