"""A tiny random Qwen-Image pipeline, built offline from the real classes and saved to disk.

The components follow diffusers' own Qwen-Image tests (2-layer transformer, head dim 16,
a Qwen2.5-VL text encoder with hidden size 16), with two changes: the VAE (z_dim 4,
base_dim 8) downsamples three times like the real one, so sizes must be multiples of 16
as with the real model; and the tokenizer, which diffusers loads from the hub, is a
byte-level `Qwen2Tokenizer` built here from the 256 byte symbols (no merges) plus Qwen's
special tokens at their real ids, so the chat template the pipeline wraps around every
prompt keeps its control tokens (a real prompt just splits into more, shorter tokens).

Use `save_tiny_qwen_image(folder)` and load the folder as a renderer would, through
`QwenImagePipeline.from_pretrained(folder, local_files_only=True)`. The weights are
random: the images are noise, but their sizes, seeds and batching behave as the real
model's. `save_tiny_lora(folder)` writes a small random LoRA for its transformer.
"""

from __future__ import annotations

from pathlib import Path

QWEN_SPECIAL_TOKENS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|object_ref_start|>": 151646,
    "<|object_ref_end|>": 151647,
    "<|box_start|>": 151648,
    "<|box_end|>": 151649,
    "<|quad_start|>": 151650,
    "<|quad_end|>": 151651,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
}
VOCAB_SIZE = 151680
"""Just above the last special id (a multiple of 16), so the embeddings stay small."""
LORA_WEIGHT_NAME = "tiny_lora.safetensors"


def byte_level_symbols() -> list[str]:
    """GPT-2's bytes-to-unicode table: the 256 symbols a byte-level BPE starts from."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    table = dict(zip(printable, codes, strict=True))
    return [chr(table[byte]) for byte in range(256)]


def tiny_tokenizer():
    from transformers import Qwen2Tokenizer

    vocab = {symbol: i for i, symbol in enumerate(byte_level_symbols())}
    vocab.update(QWEN_SPECIAL_TOKENS)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=[],
        additional_special_tokens=[t for t in QWEN_SPECIAL_TOKENS if t != "<|endoftext|>"],
        model_max_length=32768,
    )


TINY_TRANSFORMER = {
    "num_layers": 2,
    "attention_head_dim": 16,
    "num_attention_heads": 3,
    "axes_dims_rope": (8, 4, 4),
}
"""diffusers' own test transformer: a render is a few hundred tiny kernel launches, bound by
the host thread that issues them. Pass a bigger one (same keys) to make a render bound by
the GPU's arithmetic, as the real model's is."""


def tiny_components(seed: int = 0, transformer_size: dict | None = None) -> dict:
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=16,
        out_channels=4,
        joint_attention_dim=16,
        guidance_embeds=False,
        **(transformer_size or TINY_TRANSFORMER),
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLQwenImage(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 2, 4, 4],  # as the real VAE: 3 downsamplings, vae_scale_factor 8
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.0] * 4,
        latents_std=[1.0] * 4,
    )
    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
            "vocab_size": VOCAB_SIZE,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": 16,
        },
        hidden_size=16,
        vocab_size=VOCAB_SIZE,
        tie_word_embeddings=True,
        vision_start_token_id=QWEN_SPECIAL_TOKENS["<|vision_start|>"],
        vision_end_token_id=QWEN_SPECIAL_TOKENS["<|vision_end|>"],
        vision_token_id=QWEN_SPECIAL_TOKENS["<|vision_pad|>"],
        image_token_id=QWEN_SPECIAL_TOKENS["<|image_pad|>"],
        video_token_id=QWEN_SPECIAL_TOKENS["<|video_pad|>"],
    )
    text_encoder = Qwen2_5_VLForConditionalGeneration(config).eval()
    return {
        "transformer": transformer,
        "vae": vae,
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": text_encoder,
        "tokenizer": tiny_tokenizer(),
    }


def save_tiny_qwen_image(
    folder: str | Path, seed: int = 0, transformer_size: dict | None = None
) -> Path:
    """Build the tiny random pipeline and `save_pretrained` it into `folder`."""
    from diffusers import QwenImagePipeline

    folder = Path(folder)
    QwenImagePipeline(**tiny_components(seed, transformer_size)).save_pretrained(folder)
    return folder


def save_tiny_lora(
    model_folder: str | Path, out_folder: str | Path, rank: int = 4, seed: int = 1
) -> Path:
    """A random LoRA (peft) on the tiny transformer's attention projections, saved in
    the diffusers LoRA format as `out_folder/LORA_WEIGHT_NAME`."""
    import torch
    from diffusers import QwenImagePipeline, QwenImageTransformer2DModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = QwenImageTransformer2DModel.from_pretrained(
        Path(model_folder) / "transformer", local_files_only=True
    )
    transformer.add_adapter(
        LoraConfig(
            r=rank,
            lora_alpha=rank,
            init_lora_weights="gaussian",
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_B" in name:  # peft starts B at zero: make the LoRA change the output
                param.normal_(0.0, 0.5)
    out_folder = Path(out_folder)
    QwenImagePipeline.save_lora_weights(
        out_folder,
        transformer_lora_layers=get_peft_model_state_dict(transformer),
        weight_name=LORA_WEIGHT_NAME,
    )
    return out_folder
