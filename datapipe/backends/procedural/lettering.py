"""Lettering styles that make text hard to read, drawn on good and broken posters alike.

Real posters, and the renders of a text-to-image model, set copy with outlines, drop
shadows, a slight tilt, wide letter-spacing, small body text and over textured
backgrounds. A text check measured only on flat, upright text says nothing about
those, so every poster takes a `Look` chosen from its seed, and every line is drawn
glyph by glyph onto its own layer (`draw_layer`), which also tells where each glyph
is, for the glyph faults of text_faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Look:
    outline: float
    """Outline width as a share of the font size (0: none)."""
    shadow: bool
    angle: float
    """Degrees, counter-clockwise; the same for every line of a poster."""
    tracking: float
    """Extra space after each glyph as a share of the font size."""
    small: bool
    """Body text at 3/4 of its fitted size (never below the readable floor)."""
    texture: bool
    """Grain and blotches over the background, under the text."""


def choose_look(seed: int) -> Look:
    rng = random.Random(f"{seed}-look")
    return Look(
        outline=rng.choice((0.05, 0.08)) if rng.random() < 0.3 else 0.0,
        shadow=rng.random() < 0.3,
        angle=rng.uniform(-4.0, 4.0) if rng.random() < 0.4 else 0.0,
        tracking=rng.uniform(0.08, 0.25) if rng.random() < 0.3 else 0.0,
        small=rng.random() < 0.25,
        texture=rng.random() < 0.3,
    )


def add_texture(image: Image.Image, seed: int) -> None:
    """Fine grain plus soft blotches, at an amplitude that keeps the palette."""
    rng = np.random.default_rng(seed)
    w, h = image.size
    grain = rng.normal(0.0, 9.0, (h, w, 1))
    coarse = Image.fromarray(rng.integers(0, 255, (max(2, h // 24), max(2, w // 24)), np.uint8))
    blotch = coarse.resize((w, h), Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(3))
    soft = (np.asarray(blotch, np.float64)[..., None] - 128.0) * 0.12
    pixels = np.asarray(image, np.float64) + grain + soft
    image.paste(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))


def line_width(text: str, face: ImageFont.FreeTypeFont, look: Look) -> float:
    """Width of the line as `draw_layer` sets it (advances plus tracking)."""
    size = face.size
    return sum(face.getlength(c) for c in text) + look.tracking * size * max(0, len(text) - 1)


@dataclass
class Layer:
    image: Image.Image
    """RGBA, the line alone, upright."""
    glyphs: list[tuple[int, int, int, int]]
    """Box of each character of the text in the layer (empty for white space)."""
    ink: RGB


def draw_layer(text: str, face: ImageFont.FreeTypeFont, colour: RGB, look: Look) -> Layer:
    size = face.size
    stroke = round(look.outline * size)
    shadow = max(1, round(size * 0.06)) if look.shadow else 0
    margin = stroke + shadow + 2
    _, top, _, bottom = face.getbbox(text or " ")
    width = round(line_width(text, face, look)) + 2 * margin
    height = bottom - top + 2 * margin
    layer = Image.new("RGBA", (max(1, width), max(1, height)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    dark = sum(colour) / 3 < 110
    halo = (255, 255, 255) if dark else (17, 17, 17)
    positions = []
    x = float(margin)
    y = margin - top
    for c in text:
        positions.append(x)
        x += face.getlength(c) + look.tracking * size
    if shadow:
        shade = (*((200, 200, 200) if dark else (0, 0, 0)), 150)
        for c, px in zip(text, positions, strict=True):
            draw.text((px + shadow, y + shadow), c, font=face, fill=shade)
    glyphs = []
    for c, px in zip(text, positions, strict=True):
        draw.text((px, y), c, font=face, fill=(*colour, 255), stroke_width=stroke, stroke_fill=halo)
        if c.isspace():
            glyphs.append((0, 0, 0, 0))
            continue
        left, gtop, right, gbottom = face.getbbox(c)
        glyphs.append(
            (
                max(0, round(px + left) - stroke),
                max(0, round(y + gtop) - stroke),
                min(width, round(px + right) + stroke),
                min(height, round(y + gbottom) + stroke),
            )
        )
    return Layer(layer, glyphs, colour)


def placed(layer: Layer, look: Look) -> Image.Image:
    """The layer tilted by the look's angle."""
    if not look.angle:
        return layer.image
    return layer.image.rotate(look.angle, resample=Image.Resampling.BICUBIC, expand=True)
