"""The offline renderer: a Pillow poster that knows its own ground truth.

It stands in for Qwen-Image on a CPU: background from the style's palette and motif,
a drawn subject for the entity, the copy text at the layout's slots. Because it drew
everything itself it knows exactly where the text and the subject are; that truth is
for grading the checks only (the stages measure everything from the pixels, as they
must for Qwen-Image). It also draws the failure modes of a diffusion model on purpose
(garbled or missing text, no subject, a collapsed layout, a blank frame, a half-written
file) for a share of specs, chosen from the spec's own seed and the recipe's
`stages.render.faults`, so the fault kind never travels with the spec.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from datapipe.backends.base import RenderResult
from datapipe.backends.procedural.lettering import (
    Look,
    add_texture,
    choose_look,
    draw_layer,
    line_width,
    placed,
)
from datapipe.backends.procedural.motifs import draw_background
from datapipe.backends.procedural.pair_faults import PairDrawing, plan_pair_faults
from datapipe.backends.procedural.subjects import draw_subject
from datapipe.backends.procedural.text_faults import (
    TEXT_FAULTS,
    Line,
    TextFault,
    damage_glyph,
    edit_copy,
    glyph_spot,
    plain_ink,
)
from datapipe.fonts import font
from datapipe.hashing import derive_seed
from datapipe.images import encode_png
from datapipe.libraries import Library, Style
from datapipe.records import BoxInt, PromptSpec, RenderTruth, TextBox

if TYPE_CHECKING:
    from datapipe.recipe import FaultConfig

VERSION = "procedural-1"
LUMA = np.array([0.299, 0.587, 0.114])
BUSY_STD = 14.0
"""Luminance std behind a line above which the pattern would disturb reading."""
PANEL_ALPHA = 230
VARIANTS = (
    "good",
    *TEXT_FAULTS,
    "missing_text",
    "no_subject",
    "collapsed",
    "blank",
    "truncated",
)


def hex_rgb(value: str) -> tuple[int, int, int]:
    return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))


def luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG relative luminance."""

    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def scale_box(box: tuple[float, float, float, float], width: int, height: int) -> BoxInt:
    x0, y0, x1, y1 = box
    return (round(x0 * width), round(y0 * height), round(x1 * width), round(y1 * height))


class ProceduralRenderer:
    """Deterministic from the spec: the same spec gives the same pixels."""

    version = VERSION

    def __init__(
        self, library: Library, faults: FaultConfig | None = None, compress_level: int = 1
    ) -> None:
        self.library = library
        self.faults = faults
        self.compress_level = compress_level
        """For the `truncated` fault, the one file this renderer writes itself."""

    def load(self) -> None:
        """Nothing to load: fonts open lazily and are cached."""

    def render_batch(self, specs: list[PromptSpec]) -> list[RenderResult]:
        """A group's members come in one batch: a pair failure is drawn into one of them."""
        faults = self.faults
        pairs = (
            plan_pair_faults(specs, self.library, faults.pair_rate, faults.pair_kinds)
            if faults is not None
            else {}
        )
        return [self.render(spec, pair=pairs.get(spec.spec_id)) for spec in specs]

    def fault_of(self, spec: PromptSpec) -> str:
        """The fault this spec is drawn with ("good" for none): the same spec and recipe
        always give the same one, and no stage can read it off the spec."""
        faults = self.faults
        if faults is None or faults.rate <= 0:
            return "good"
        rng = random.Random(derive_seed(spec.seed, spec.spec_id, "fault"))
        return rng.choice(faults.kinds) if rng.random() < faults.rate else "good"

    def render(
        self, spec: PromptSpec, fault: str | None = None, pair: PairDrawing | None = None
    ) -> RenderResult:
        """`fault` overrides the recipe's fault plan (tests draw every kind on purpose);
        `pair` draws the spec as a pair failure says."""
        variant = self.fault_of(spec) if fault is None else fault
        if pair is None:
            result = self._render(spec, variant)
        else:
            result = self._render(pair.spec, variant, pair.style, pair.slots)
        if result.truth is not None:
            drawn = result.truth.text_fault
            # a text fault that cannot apply to this copy falls back to one that can
            result.truth.fault = drawn["kind"] if drawn else variant
            if pair is not None:
                result.truth.pair_fault, result.truth.pair_with = pair.kind, pair.copied
        if variant == "truncated":
            whole = encode_png(result.image, self.compress_level)
            result.file = whole[: len(whole) // 2]  # as a renderer that wrote half a file
        return result

    def _render(
        self,
        spec: PromptSpec,
        variant: str,
        style: Style | None = None,
        slots: dict[str, str] | None = None,
    ) -> RenderResult:
        rng = random.Random(spec.seed)
        style = style or self.library.style(spec.style_id)
        layout = self.library.layout(spec.layout_id)
        palette = {k: hex_rgb(v) for k, v in style.palette.model_dump().items()}
        size = (spec.width, spec.height)
        empty_mask = np.zeros((spec.height, spec.width), dtype=bool)

        if variant == "blank":
            image = Image.new("RGB", size, palette["background"])
            return RenderResult(image, empty_mask, RenderTruth([], None, {}))

        motif = "plain" if variant == "collapsed" else style.motif
        image = draw_background(motif, size, palette, rng)
        look = choose_look(spec.seed)
        if look.texture:
            add_texture(image, spec.seed)
        boxes = {
            "title": layout.title,
            "body": layout.body,
            "subject": layout.subject,
        }
        if variant == "collapsed":
            boxes = self._collapse(boxes, rng)
        if slots is not None:
            boxes = {name: boxes[slots[name]] for name in boxes}
        px = {name: scale_box(box, *size) for name, box in boxes.items()}

        mask = empty_mask
        subject_box = None
        if variant != "no_subject":
            mask, subject_box = self._draw_subject(image, spec, px["subject"], palette, rng)

        text_boxes: list[TextBox] = []
        fault = None
        if variant != "missing_text":
            text_boxes, fault = self._draw_copy(image, spec, variant, px, style, palette, look)
        layout_boxes = dict(px)
        truth = RenderTruth(text_boxes, subject_box, layout_boxes, text_fault=fault)
        return RenderResult(image, mask, truth)

    @staticmethod
    def _collapse(
        boxes: dict[str, tuple[float, float, float, float]], rng: random.Random
    ) -> dict[str, tuple[float, float, float, float]]:
        """Squeeze every element into one small corner, overlapping, as a collapsed render."""
        side = 0.3
        ox, oy = rng.choice([(0.03, 0.03), (0.67, 0.03), (0.03, 0.67), (0.67, 0.67)])
        return {
            name: (ox + x0 * side, oy + y0 * side, ox + x1 * side, oy + y1 * side)
            for name, (x0, y0, x1, y1) in boxes.items()
        }

    @staticmethod
    def _draw_subject(
        image: Image.Image,
        spec: PromptSpec,
        box: BoxInt,
        palette: dict[str, tuple[int, int, int]],
        rng: random.Random,
    ) -> tuple[np.ndarray, BoxInt | None]:
        x0, y0, x1, y1 = box
        w, h = max(8, x1 - x0), max(8, y1 - y0)
        accents = [palette["primary"], palette["secondary"], palette["accent"]]
        drawn = draw_subject(spec.entity_shape, (w, h), hex_rgb(spec.entity_color), accents, rng)
        alpha = drawn.getchannel("A")
        image.paste(drawn.convert("RGB"), (x0, y0), alpha)
        mask = np.zeros((image.height, image.width), dtype=bool)
        local = np.asarray(alpha) > 0
        region = mask[y0 : y0 + h, x0 : x0 + w]
        region |= local[: region.shape[0], : region.shape[1]]
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            return mask, None
        return mask, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)

    def _draw_copy(
        self,
        image: Image.Image,
        spec: PromptSpec,
        variant: str,
        px: dict[str, BoxInt],
        style: Style,
        palette: dict[str, tuple[int, int, int]],
        look: Look,
    ) -> tuple[list[TextBox], dict[str, Any] | None]:
        """The copy, with the text fault `variant` names (if it is one) drawn into it."""
        rng = random.Random(f"{spec.seed}-text-fault")
        lines: list[Line] = [(line.role, line.text) for line in spec.copy]
        lines, fault = edit_copy(variant, lines, rng, spec.language)
        glyph = glyph_spot(lines, rng) if variant == "malformed_glyph" else None
        boxes, how = self._draw_text(image, lines, px, style, palette, look, glyph, rng)
        if glyph is not None:
            i, j = glyph
            fault = TextFault("malformed_glyph", i, lines[i][1], lines[i][1], char=j, how=how)
        return boxes, (dataclasses.asdict(fault) if fault is not None else None)

    def _draw_text(
        self,
        image: Image.Image,
        lines: list[Line],
        px: dict[str, BoxInt],
        style: Style,
        palette: dict[str, tuple[int, int, int]],
        look: Look,
        glyph: tuple[int, int] | None,
        rng: random.Random,
    ) -> tuple[list[TextBox], str]:
        """Every line at its slot, the glyph at `glyph` (line, char) damaged; and how."""
        typography = style.typography
        title_weight = "bold" if typography.weight == "bold" else "regular"
        slots = [px["title"]]
        body = lines[1:]
        if body:
            bx0, by0, bx1, by1 = px["body"]
            step = (by1 - by0) / len(body)
            slots += [
                (bx0, round(by0 + i * step), bx1, round(by0 + (i + 1) * step))
                for i in range(len(body))
            ]
        fill = 0.78 * typography.title_scale
        title_size = self._fit(lines[0][1], slots[0], title_weight, fill, look)
        body_sizes = [
            self._fit(text, slot, "regular", 0.62, look)
            for (_, text), slot in zip(body, slots[1:], strict=True)
        ]
        readable = max(12, round(0.03 * max(image.size)))
        body_size = min([*body_sizes, max(readable, round(title_size * 0.75))]) if body_sizes else 0
        if look.small:
            body_size = max(readable, round(body_size * 0.75))
        out = []
        how = ""
        for i, ((role, text), slot) in enumerate(zip(lines, slots, strict=True)):
            weight, size = (title_weight, title_size) if i == 0 else ("regular", body_size)
            damage = glyph[1] if glyph is not None and glyph[0] == i else None
            drawn = Lettering(font(weight, size), typography.align, look)
            box, said = drawn.draw(image, role, text, slot, palette, damage, rng)
            out.append(box)
            how = how or said
        return out, how

    @staticmethod
    def _fit(text: str, slot: BoxInt, weight: str, fill: float, look: Look) -> int:
        """The largest font size whose line fits the slot's width and `fill` of its height."""
        x0, y0, x1, y1 = slot
        width, height = max(1, x1 - x0), max(1, y1 - y0)
        lo, hi = 6, max(6, int(height * min(fill, 0.95)))
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if line_width(text, font(weight, mid), look) <= width * 0.92:
                lo = mid
            else:
                hi = mid - 1
        return lo


@dataclass
class Lettering:
    """How one line is set: its face, alignment and the poster's look."""

    face: ImageFont.FreeTypeFont
    align: str
    look: Look

    def draw(
        self,
        image: Image.Image,
        role: str,
        text: str,
        slot: BoxInt,
        palette: dict[str, tuple[int, int, int]],
        damage: int | None,
        rng: random.Random,
    ) -> tuple[TextBox, str]:
        """Draw the line centred in its slot, on a label where the ground is busy; the
        glyph at index `damage` is damaged (text_faults). Returns its box and how."""
        x0, y0, x1, y1 = slot
        size = self.face.size
        probe = draw_layer(text, self.face, palette["text"], self.look)
        tilted = placed(probe, self.look)
        tw, th = tilted.size
        x = x0 if self.align == "left" else round((x0 + x1 - tw) / 2)
        y = round((y0 + y1 - th) / 2)
        ink = tilted.getchannel("A").getbbox() or (0, 0, tw, th)
        box = (x + ink[0], y + ink[1], x + ink[2], y + ink[3])
        pad = max(2, size // 5)
        around = (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)
        region = np.asarray(image.crop(around)).reshape(-1, 3).astype(np.float64)
        mean = tuple(region.mean(axis=0))
        busy = float((region @ LUMA).std()) > BUSY_STD
        choices = [palette["text"], palette["primary"], (255, 255, 255), (17, 17, 17)]
        colour = palette["text"]
        if contrast(colour, mean) < 4.5:
            colour = max(choices, key=lambda c: contrast(c, mean))
        if busy or contrast(colour, mean) < 4.5:
            # A label behind the line, as designers do over a busy pattern.
            panel = palette["background"]
            if contrast(colour, panel) < 4.5:
                panel = (255, 255, 255) if luminance(colour) < 0.4 else (17, 17, 17)
            size_wh = (around[2] - around[0], around[3] - around[1])
            label = Image.new("RGBA", size_wh, (0, 0, 0, 0))
            ImageDraw.Draw(label).rounded_rectangle(
                (0, 0, size_wh[0] - 1, size_wh[1] - 1), radius=pad, fill=(*panel, PANEL_ALPHA)
            )
            image.paste(label, around[:2], label)
        layer = (
            probe if colour == palette["text"] else draw_layer(text, self.face, colour, self.look)
        )
        said = ""
        if damage is not None and layer.glyphs[damage][2] > layer.glyphs[damage][0]:
            others = [g for g in layer.glyphs[damage + 1 :] + layer.glyphs[:damage] if g[2] > g[0]]
            said = damage_glyph(
                layer.image,
                layer.glyphs[damage],
                rng,
                (others or [None])[0],
                plain_ink(text[damage], self.face),
            )
        drawn = placed(layer, self.look)
        image.paste(drawn, (x, y), drawn)
        return TextBox(role=role, text=text, box=box), said
