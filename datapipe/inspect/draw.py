"""Pictures of samples: thumbnails, mask overlays and the source -> target grid.

Everything here works on PIL images and needs no optional package. Images that cannot
be decoded are drawn as a labelled placeholder, never skipped: a broken render is
exactly what someone looking at rejects wants to see.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from datapipe.fonts import font

THUMB = 192
"""Side of the square box each image is fitted into in a grid, in pixels."""
GAP = 12
"""Space between grid cells and around the grid."""
PAD = 8
"""Space inside a cell, around its images and caption."""
ARROW = 30
"""Width of the arrow between the source(s) and the target."""
SOURCE_GAP = 4
"""Space between two sources of one sample."""
FONT_SIZE = 13
LINE_HEIGHT = 17
CAPTION_LINES = 4
"""A header line (task, language, key) and up to three lines of instruction."""
MASK_COLOR = (230, 30, 30)
MASK_ALPHA = 0.45
BOX_BACKGROUND = (238, 238, 238)
CELL_BACKGROUND = (255, 255, 255)
GRID_BACKGROUND = (222, 222, 226)
TEXT_COLOR = (25, 25, 25)
MUTED_COLOR = (110, 110, 110)


def decode_image(data: bytes | None) -> Image.Image | None:
    """Decode fully; None for missing or undecodable bytes (drawn as a placeholder)."""
    if not data:
        return None
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:  # any decoding failure is shown, not raised: see module docstring
        return None
    return image


def overlay_mask(image: Image.Image, mask: Image.Image | None) -> Image.Image:
    """The image with the mask's region tinted semi-transparent red (mask > 127)."""
    base = image.convert("RGB")
    if mask is None:
        return base
    m = mask.convert("L")
    if m.size != base.size:
        m = m.resize(base.size, Image.Resampling.NEAREST)
    selected = np.asarray(m) > 127
    pixels = np.asarray(base, dtype=np.float32).copy()
    tint = np.array(MASK_COLOR, dtype=np.float32)
    pixels[selected] = (1 - MASK_ALPHA) * pixels[selected] + MASK_ALPHA * tint
    return Image.fromarray(pixels.round().astype(np.uint8), mode="RGB")


def fit(image: Image.Image, side: int) -> Image.Image:
    """A copy scaled to fit a side x side box (never enlarged), aspect ratio kept."""
    copy = image.convert("RGB") if image.mode not in ("RGB", "L") else image.copy()
    copy.thumbnail((side, side), Image.Resampling.LANCZOS)
    return copy


def placeholder(side: int, text: str = "unreadable image") -> Image.Image:
    """A grey square with a diagonal cross and a label, for an image that cannot be shown."""
    image = Image.new("RGB", (side, side), (205, 205, 205))
    draw = ImageDraw.Draw(image)
    draw.line((0, 0, side, side), fill=(170, 170, 170), width=2)
    draw.line((0, side, side, 0), fill=(170, 170, 170), width=2)
    face = font("regular", max(9, side // 12))
    width = draw.textlength(text, font=face)
    draw.rectangle(
        (side / 2 - width / 2 - 4, side / 2 - 10, side / 2 + width / 2 + 4, side / 2 + 10),
        fill=(245, 245, 245),
    )
    draw.text((side / 2, side / 2), text, font=face, fill=(150, 20, 20), anchor="mm")
    return image


def thumbnail(image: Image.Image | None, side: int, text: str = "unreadable image") -> Image.Image:
    return fit(image, side) if image is not None else placeholder(side, text)


def data_uri(image: Image.Image, fmt: str = "PNG") -> str:
    """An inline `data:` URI, for HTML shown in Jupyter."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    mime = "image/png" if fmt.upper() == "PNG" else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def wrap(text: str, face: ImageFont.FreeTypeFont, width: float, lines: int) -> list[str]:
    """Greedy wrap to `width` pixels: by words where there are spaces, by characters
    otherwise (Chinese); the last line ends in an ellipsis when text is left over."""
    spaced = " " in text.strip()
    tokens = text.split() if spaced else list(text.strip())
    joiner = " " if spaced else ""
    out: list[str] = []
    current = ""
    for token in tokens:
        candidate = f"{current}{joiner}{token}" if current else token
        if face.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            out.append(current)
        current = token
        while len(current) > 1 and face.getlength(current) > width:
            cut = len(current) - 1
            while cut > 1 and face.getlength(current[:cut]) > width:
                cut -= 1
            out.append(current[:cut])
            current = current[cut:]
    if current:
        out.append(current)
    if len(out) > lines:
        out = out[:lines]
        last = out[-1]
        while last and face.getlength(last + "…") > width:
            last = last[:-1]
        out[-1] = last + "…"
    return out


@dataclass
class Cell:
    """One grid cell: sources -> target (the mask tints the first source), and a caption."""

    target: Image.Image | None
    sources: list[Image.Image | None] = field(default_factory=list)
    mask: Image.Image | None = None
    header: str = ""
    text: str = ""
    placeholder_text: str = "unreadable image"


def cell_size(sources: int, thumb: int = THUMB) -> tuple[int, int]:
    width = 2 * PAD + sources * thumb + max(0, sources - 1) * SOURCE_GAP + thumb
    if sources:
        width += ARROW
    height = 2 * PAD + thumb + 6 + CAPTION_LINES * LINE_HEIGHT
    return width, height


def grid_size(n: int, columns: int = 2, thumb: int = THUMB, sources: int = 1) -> tuple[int, int]:
    """(width, height) of the image `draw_grid` returns for n cells."""
    if n <= 0:
        return 2 * GAP + 2 * thumb, 2 * GAP + LINE_HEIGHT * 2
    cols = max(1, min(columns, n))
    rows = math.ceil(n / cols)
    cw, ch = cell_size(sources, thumb)
    return cols * cw + (cols + 1) * GAP, rows * ch + (rows + 1) * GAP


def _arrow(draw: ImageDraw.ImageDraw, x: int, y: int) -> None:
    x0, x1 = x + 6, x + ARROW - 6
    draw.line((x0, y, x1, y), fill=MUTED_COLOR, width=3)
    draw.polygon([(x1 + 2, y), (x1 - 7, y - 6), (x1 - 7, y + 6)], fill=MUTED_COLOR)


def _paste_centered(canvas: Image.Image, image: Image.Image, box: tuple[int, int, int]) -> None:
    x, y, side = box
    ImageDraw.Draw(canvas).rectangle((x, y, x + side - 1, y + side - 1), fill=BOX_BACKGROUND)
    canvas.paste(
        image.convert("RGB"), (x + (side - image.width) // 2, y + (side - image.height) // 2)
    )


def draw_cell(canvas: Image.Image, cell: Cell, origin: tuple[int, int], sources: int, thumb: int):
    x0, y0 = origin
    width, height = cell_size(sources, thumb)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x0, y0, x0 + width - 1, y0 + height - 1), fill=CELL_BACKGROUND)
    x, y = x0 + PAD, y0 + PAD
    for i in range(sources):
        image = cell.sources[i] if i < len(cell.sources) else None
        if image is not None and i == 0 and cell.mask is not None:
            image = overlay_mask(image, cell.mask)
        if i < len(cell.sources):
            _paste_centered(canvas, thumbnail(image, thumb, cell.placeholder_text), (x, y, thumb))
        x += thumb + (SOURCE_GAP if i < sources - 1 else 0)
    if sources:
        if cell.sources:
            _arrow(draw, x, y + thumb // 2)
        x += ARROW
    target = cell.target
    if target is not None and not cell.sources and cell.mask is not None:
        target = overlay_mask(target, cell.mask)
    _paste_centered(canvas, thumbnail(target, thumb, cell.placeholder_text), (x, y, thumb))
    face = font("regular", FONT_SIZE)
    text_width = width - 2 * PAD
    ty = y0 + PAD + thumb + 6
    if cell.header:
        header = wrap(cell.header, face, text_width, 1)
        draw.text((x0 + PAD, ty), header[0] if header else "", font=face, fill=MUTED_COLOR)
    for line in wrap(cell.text, face, text_width, CAPTION_LINES - 1):
        ty += LINE_HEIGHT
        draw.text((x0 + PAD, ty), line, font=face, fill=TEXT_COLOR)


def draw_grid(cells: list[Cell], columns: int = 2, thumb: int = THUMB) -> Image.Image:
    """Cells in rows of `columns`; the size is `grid_size(len(cells), columns, thumb, S)`
    where S is the largest number of sources of any cell."""
    sources = max((len(c.sources) for c in cells), default=0)
    size = grid_size(len(cells), columns, thumb, sources)
    canvas = Image.new("RGB", size, GRID_BACKGROUND)
    if not cells:
        ImageDraw.Draw(canvas).text(
            (GAP, GAP), "nothing to show", font=font("regular", FONT_SIZE), fill=MUTED_COLOR
        )
        return canvas
    cols = max(1, min(columns, len(cells)))
    cw, ch = cell_size(sources, thumb)
    for i, cell in enumerate(cells):
        row, col = divmod(i, cols)
        origin = (GAP + col * (cw + GAP), GAP + row * (ch + GAP))
        draw_cell(canvas, cell, origin, sources, thumb)
    return canvas
