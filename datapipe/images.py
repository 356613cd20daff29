"""Decoding and encoding images the same way everywhere.

Every image in a shard is PNG (lossless, so pair invariants hold to the pixel) and
encoded by `encode_png` with fixed settings, so the same pixels give the same bytes.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

PNG_COMPRESS_LEVEL = 6


class BadImageError(ValueError):
    """Image bytes that cannot be used; the message is the recorded reason detail."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        super().__init__(f"{code}: {detail}")


def decode(data: bytes) -> Image.Image:
    """Decode fully (not lazily), so a truncated file fails here and not later."""
    if not data:
        raise BadImageError("empty", "zero bytes")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImageError("unreadable", f"{type(exc).__name__}: {exc}") from None
    if image.width == 0 or image.height == 0:
        raise BadImageError("empty", f"size {image.width}x{image.height}")
    return image


def load_rgb(data: bytes) -> Image.Image:
    """Decode and insist on RGB: other modes are rejected, never silently converted."""
    image = decode(data)
    if image.mode != "RGB":
        raise BadImageError("wrong_mode", f"mode {image.mode}, expected RGB")
    return image


def load_mask(data: bytes) -> np.ndarray:
    """A mask PNG as a boolean array."""
    mask = decode(data)
    return np.asarray(mask.convert("L")) > 127


def encode_png(image: Image.Image, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def mask_to_png(mask: np.ndarray) -> bytes:
    return encode_png(Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L"))
