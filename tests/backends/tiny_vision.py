"""Tiny random vision models, built with the real classes and saved to local files.

Backends load them through their real loading paths (a checkpoint file, a
`from_pretrained` folder), so a test exercises exactly what a cluster run does, without
weights from any hub. Every builder is seeded and leaves the global RNG state untouched.

- open_clip: a tiny CLIP (embed 32, 64 px vision tower, 2+2 layers of width 64) in the
  layout of an open_clip hub repository (open_clip_config.json with model and
  preprocessing config, open_clip_pytorch_model.bin), loaded with `local-dir:`. One has
  open_clip's BPE text tower (its tokenizer ships in the wheel); the multilingual one an
  XLM-R text tower from transformers, with an XLM-R tokenizer built here over the
  character inventory of RapidOCR's PP-OCRv6 recogniser (see `xlmr_style_tokenizer`).
- SAM-2: the packaged hiera-tiny config with `++model.image_size=256` (pass
  `SAM2_TINY_OVERRIDES` to the backend too); saved as `{"model": state_dict}`, the
  format `sam2.build_sam._load_checkpoint` reads.
- OWLv2 and Grounding DINO: small configs, real `*ForObjectDetection` classes, saved with
  `save_pretrained` together with a processor. The processors' tokenizers normally come
  from the hub, so they are built here from a vocabulary written in code:
  * OWLv2 uses a `CLIPTokenizer` over the 256 byte-level symbols (plain and with the
    `</w>` end-of-word suffix) plus `<|startoftext|>` / `<|endoftext|>`, with no merges:
    every character is one token, which is all a random model needs.
  * Grounding DINO uses a `BertTokenizer` over [PAD]/[UNK]/[CLS]/[SEP]/[MASK], ".",
    the letters and digits and their "##" continuations.
  The image processors are constructed directly with a small input size.

Use from a test module in tests/backends as `from tiny_vision import ...`.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

TINY_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}

SAM2_TINY_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
SAM2_TINY_IMAGE_SIZE = 256
SAM2_TINY_OVERRIDES = [f"++model.image_size={SAM2_TINY_IMAGE_SIZE}"]

DETECTOR_IMAGE_SIZE = 64


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """torch seeded for the block; the caller's RNG state is restored after it."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_tiny_sam2(folder: Path, seed: int = 0) -> Path:
    """A random SAM-2 hiera-tiny at 256 px saved as {"model": state_dict}; returns the .pt.

    Load it with `Sam2Config(config=SAM2_TINY_CONFIG, checkpoint=path, ...)` and the
    overrides `SAM2_TINY_OVERRIDES`."""
    import torch
    from sam2.build_sam import build_sam2

    with _seeded(seed):
        model = build_sam2(
            SAM2_TINY_CONFIG,
            ckpt_path=None,
            device="cpu",
            hydra_overrides_extra=SAM2_TINY_OVERRIDES,
        )
    path = Path(folder) / "sam2_tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def _bytes_to_unicode() -> list[str]:
    """GPT-2 / CLIP byte-level alphabet: 256 printable stand-ins for the 256 bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def clip_char_tokenizer(max_length: int = 16):
    """A CLIPTokenizer (byte-level BPE, no merges) built without any downloaded files."""
    from transformers import CLIPTokenizer

    symbols = _bytes_to_unicode()
    vocab: dict[str, int] = {}
    for token in [*symbols, *(s + "</w>" for s in symbols), "<|startoftext|>", "<|endoftext|>"]:
        vocab[token] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def bert_char_tokenizer():
    """A lower-casing BertTokenizer over letters and digits, built without downloads."""
    from transformers import BertTokenizer

    chars = string.ascii_lowercase + string.digits
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *chars, *("##" + c for c in chars)]
    return BertTokenizer(vocab={w: i for i, w in enumerate(words)})


def build_tiny_owlv2(folder: Path, seed: int = 0) -> Path:
    """A random tiny OWLv2 detector + processor saved with save_pretrained; returns the folder."""
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
    )

    tokenizer = clip_char_tokenizer(max_length=16)
    bos, eos = tokenizer.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    layers = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2}
    config = Owlv2Config(
        text_config={
            **layers,
            "num_attention_heads": 4,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 16,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            **layers,
            "num_attention_heads": 4,
            "image_size": DETECTOR_IMAGE_SIZE,
            "patch_size": 16,
        },
        projection_dim=32,
    )
    with _seeded(seed):
        model = Owlv2ForObjectDetection(config).eval()
    size = {"height": DETECTOR_IMAGE_SIZE, "width": DETECTOR_IMAGE_SIZE}
    processor = Owlv2Processor(image_processor=Owlv2ImageProcessor(size=size), tokenizer=tokenizer)
    out = Path(folder) / "owlv2-tiny"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_tiny_grounding_dino(folder: Path, seed: int = 0) -> Path:
    """A random tiny Grounding DINO (Swin + BERT) + processor; returns the folder."""
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    tokenizer = bert_char_tokenizer()
    swin = SwinConfig(
        image_size=DETECTOR_IMAGE_SIZE,
        window_size=4,
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        out_features=["stage2", "stage3", "stage4"],
    )
    config = GroundingDinoConfig(
        backbone_config=swin,
        text_config={
            "model_type": "bert",
            "vocab_size": len(tokenizer),
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 16,
            "max_position_embeddings": 64,
        },
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # transformers ties bbox heads across decoder layers: needs >= 2
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_queries=8,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=32,
    )
    with _seeded(seed):
        model = GroundingDinoForObjectDetection(config).eval()
    size = {"shortest_edge": DETECTOR_IMAGE_SIZE, "longest_edge": 2 * DETECTOR_IMAGE_SIZE}
    processor = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size=size), tokenizer=tokenizer
    )
    out = Path(folder) / "grounding-dino-tiny"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def poster_image(width: int = 200, height: int = 120, seed: int = 0) -> Image.Image:
    """A small RGB test picture: a noisy background with a filled ellipse (the subject)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    ImageDraw.Draw(image).ellipse(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(220, 40, 40)
    )
    return image


TINY_CLIP_PREPROCESS = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
"""Not open_clip's OpenAI defaults: a test can tell the folder's config was applied."""

TINY_XLMR_TEXT_CFG: dict[str, Any] = {
    "hf_model_name": "xlm-roberta-large",
    "hf_tokenizer_name": "xlm-roberta-large",
    "hf_pooler_type": "mean_pooler",
    "hf_proj_type": "linear",
    "context_length": 32,
}
"""open_clip's xlm-roberta-large-ViT-H-14 text config, as its hub repository writes it
(the names are resolved to the local folder by the backend), with a short context."""


def _write_clip_dir(folder: Path, model: Any, model_cfg: dict[str, Any]) -> Path:
    import json

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": TINY_CLIP_PREPROCESS}
    (folder / "open_clip_config.json").write_text(json.dumps(config), encoding="utf-8")
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def build_tiny_clip(folder: Path, seed: int = 0) -> Path:
    """A random tiny open_clip CLIP (BPE text tower) in the layout of an open_clip hub
    repository; returns the folder, for `model: local-dir:<folder>`."""
    from open_clip.model import CLIP

    with _seeded(seed):
        model = CLIP(**TINY_CLIP_CONFIG)
    return _write_clip_dir(Path(folder), model, TINY_CLIP_CONFIG)


def ppocr_characters() -> list[str]:
    """The 18,708-entry character list of RapidOCR's PP-OCRv6 recogniser (stored in the
    ONNX file's metadata): a character inventory built for general zh + en text, not
    from this project's libraries."""
    import onnxruntime
    import rapidocr

    path = Path(rapidocr.__file__).parent / "models" / "PP-OCRv6_rec_small.onnx"
    meta = onnxruntime.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    return meta["character"].splitlines()


def xlmr_style_tokenizer(folder: Path) -> Any:
    """An XLM-R tokenizer (the real transformers class: SentencePiece-style Unigram with
    Metaspace pre-tokenization, <s> ... </s>, <unk> for what the vocabulary lacks) whose
    pieces are PP-OCRv6's characters, saved to `folder` (tokenizer.json and
    tokenizer_config.json). It stands in for xlm-roberta-large's 250k-piece
    sentencepiece.bpe.model, which no package ships: it reads Chinese character by
    character and gives <unk> for any character outside that inventory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    chars = [c for c in dict.fromkeys(ppocr_characters()) if c.strip() and c not in specials]
    pieces = [(s, 0.0) for s in specials] + [("\u2581", -1.0)]
    pieces += [(c, -5.0) for c in chars] + [("<mask>", 0.0)]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=3, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    fast = XLMRobertaTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )
    fast.save_pretrained(folder)
    return fast


def build_tiny_multilingual_clip(folder: Path, seed: int = 0) -> Path:
    """A random tiny CLIP with a Hugging Face XLM-R text tower (open_clip's
    CustomTextCLIP, as xlm-roberta-large-ViT-H-14), laid out as its hub repository plus
    the text tower's config.json; returns the folder, for `model: local-dir:<folder>`."""
    from open_clip.model import CustomTextCLIP
    from transformers import XLMRobertaConfig

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = xlmr_style_tokenizer(folder)
    context = TINY_XLMR_TEXT_CFG["context_length"]
    XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=context + 2,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    ).save_pretrained(folder)
    model_cfg = {**TINY_CLIP_CONFIG, "text_cfg": TINY_XLMR_TEXT_CFG}
    local_text = {**TINY_XLMR_TEXT_CFG, "hf_model_name": str(folder), "hf_model_pretrained": False}
    with _seeded(seed):
        model = CustomTextCLIP(
            embed_dim=TINY_CLIP_CONFIG["embed_dim"],
            vision_cfg=TINY_CLIP_CONFIG["vision_cfg"],
            text_cfg=local_text,
        )
    return _write_clip_dir(folder, model, model_cfg)
