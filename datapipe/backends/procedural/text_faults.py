"""The text errors of text-to-image models, drawn on purpose so the text checks are measured.

Two families. Copy faults change what is written before it is drawn: a digit of a
price or date changed, one glyph swapped for a look-alike, the whole line garbled,
an unrequested line (gibberish or plausible words), a line written twice. Glyph
faults damage the pixels of one glyph after it is drawn: strokes partly erased, half
the glyph mirrored, a stroke added, the halves of two glyphs merged, so the text is
right but no reader would accept the glyph. Every fault says what it did
(`TextFault`), which the renderer keeps in its truth for grading only.

The dispatch is keyed by the kind string (`COPY_FAULTS`, `GLYPH_FAULTS`); a kind that
cannot apply to a copy (no digit to change) falls back to the next kind of
`FALLBACK` and the record names the kind actually drawn.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from datapipe.recipe import TextFaultKind

Line = tuple[str, str]
"""(role, text) of one line to draw."""

TEXT_FAULTS: tuple[str, ...] = get_args(TextFaultKind)
_ZH_POOL = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"
    "同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自"
    "二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日"
)
"""Common characters a garbled glyph is replaced with."""
_LOOKALIKE_PAIRS = (
    # zh: one stroke more or less, or a component swapped
    "日目 目日 特持 持特 己已 已己 末未 未末 土士 士土 人入 入人 天夫 夫天 大太 太大 "
    "田由 由田 甲申 申甲 干千 千干 午牛 牛午 王玉 玉王 问间 间问 今令 令今 免兔 折拆 "
    "贝见 见贝 历厉 刀力 力刀 白自 自白 季李 李季 推准 准推 鸟乌 乌鸟 休体 体休 "
    "味昧 昧味 享亨 亨享 活括 括活 好奸 情清 清情 惊凉 时吋 价份 份价 元无 无元 "
    "新亲 亲新 限很 很限 鲜鳝 当常 常当 心必 必心 品晶 会合 合会 食良 良食 美羡 "
    "季秀 享亭 风凤 凤风 校较 较校 招沼 聘娉 报极 名各 各名 参叁 加如 如加 开升 "
    "升开 约钓 好妤 起赵 月用 用月 年午 乐东 东乐 周同 同周 节苄 活舌 "
    # en and digits
    "EF FE OQ QO 0O O0 1l l1 Il lI CG GC PR RP B8 8B S5 5S 6b b6 nh hn ce ec uv vu "
    "ij ji mn nm 2Z Z2 MN NM UV VU KX DO ao oa"
)
LOOKALIKES: dict[str, str] = {}
for _pair in _LOOKALIKE_PAIRS.split():
    LOOKALIKES.setdefault(_pair[0], _pair[1])
"""A glyph -> a look-alike a model draws in its place."""
_EXTRA_WORDS = {
    "zh": ("全场包邮", "买一送一", "会员专享", "新品上市", "欢迎光临", "限量发售", "好礼相送"),
    "en": ("FREE SHIPPING", "BUY ONE GET ONE", "MEMBERS ONLY", "NEW ARRIVAL", "OPEN DAILY"),
}
"""Plausible unrequested lines: words a model adds that no copy asked for."""


@dataclass
class TextFault:
    """What a fault changed: kept in the renderer's truth, never read by a check."""

    kind: str
    line: int
    """Index of the line drawn (after the fault) that carries it."""
    before: str
    after: str
    char: int = -1
    """For glyph faults, the index in the line's text of the damaged glyph."""
    how: str = ""


def _digit_changed(
    lines: list[Line], rng: random.Random, _language: str
) -> tuple[list[Line], TextFault] | None:
    spots = [(i, j) for i, (_, t) in enumerate(lines) for j, c in enumerate(t) if c.isdigit()]
    if not spots:
        return None
    i, j = rng.choice(spots)
    role, text = lines[i]
    new = text[:j] + rng.choice("0123456789".replace(text[j], "")) + text[j + 1 :]
    out = list(lines)
    out[i] = (role, new)
    return out, TextFault("digit_changed", i, text, new, char=j)


def _lookalike(
    lines: list[Line], rng: random.Random, _language: str
) -> tuple[list[Line], TextFault] | None:
    spots = [(i, j) for i, (_, t) in enumerate(lines) for j, c in enumerate(t) if c in LOOKALIKES]
    if not spots:
        return None
    i, j = rng.choice(spots)
    role, text = lines[i]
    new = text[:j] + LOOKALIKES[text[j]] + text[j + 1 :]
    out = list(lines)
    out[i] = (role, new)
    return out, TextFault("lookalike", i, text, new, char=j)


def corrupt_text(text: str, rng: random.Random, rate: float = 0.35) -> str:
    """Garble a share of the characters as a diffusion model garbles glyphs."""
    chars = list(text)
    positions = [i for i, c in enumerate(chars) if not c.isspace()]
    count = max(1, math.ceil(len(positions) * rate))
    for i in rng.sample(positions, min(count, len(positions))):
        c = chars[i]
        if c.isdigit():
            pool = "0123456789".replace(c, "")
        elif c.isascii() and c.isalpha():
            pool = "QWXZJKVqwxzjkv".replace(c, "")
        else:
            pool = _ZH_POOL.replace(c, "")
        chars[i] = rng.choice(pool)
    return "".join(chars)


def _wrong_text(
    lines: list[Line], rng: random.Random, _language: str
) -> tuple[list[Line], TextFault] | None:
    out = [(role, corrupt_text(text, rng)) for role, text in lines]
    return out, TextFault("wrong_text", 0, lines[0][1], out[0][1])


def gibberish(language: str, rng: random.Random) -> str:
    """A line of random glyphs, as a model fills space with pseudo-text."""
    if language == "zh":
        return "".join(rng.choice(_ZH_POOL) for _ in range(rng.randint(4, 7)))
    letters = "ABCDEFGHIJKLMNOPRSTUVWY"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 6))) for _ in range(2)]
    return " ".join(words)


def _extra_line(
    lines: list[Line], rng: random.Random, language: str
) -> tuple[list[Line], TextFault]:
    words = rng.random() < 0.5
    text = rng.choice(_EXTRA_WORDS[language]) if words else gibberish(language, rng)
    at = rng.randint(1, len(lines))
    out = [*lines[:at], ("extra", text), *lines[at:]]
    return out, TextFault("extra_line", at, "", text, how="words" if words else "gibberish")


def _duplicated_line(
    lines: list[Line], rng: random.Random, _language: str
) -> tuple[list[Line], TextFault]:
    i = rng.randrange(1, len(lines)) if len(lines) > 1 else 0
    out = [*lines[: i + 1], ("body", lines[i][1]), *lines[i + 1 :]]
    return out, TextFault("duplicated_line", i + 1, "", lines[i][1])


COPY_FAULTS: dict[str, Callable[..., tuple[list[Line], TextFault] | None]] = {
    "wrong_text": _wrong_text,
    "digit_changed": _digit_changed,
    "lookalike": _lookalike,
    "extra_line": _extra_line,
    "duplicated_line": _duplicated_line,
}
FALLBACK = {"digit_changed": "lookalike", "lookalike": "wrong_text"}
"""A copy fault that finds nothing to change (no digit, no glyph with a look-alike)
draws this one instead."""


def edit_copy(
    kind: str, lines: list[Line], rng: random.Random, language: str
) -> tuple[list[Line], TextFault | None]:
    """The lines to draw for a copy fault `kind` (unchanged for any other kind)."""
    while kind in COPY_FAULTS:
        done = COPY_FAULTS[kind](lines, rng, language)
        if done is not None:
            return done
        kind = FALLBACK[kind]
    return lines, None


def glyph_spot(lines: list[Line], rng: random.Random) -> tuple[int, int]:
    """(line, char) of the glyph a glyph fault damages: a letter, digit or CJK glyph."""
    spots = [
        (i, j)
        for i, (_, t) in enumerate(lines)
        for j, c in enumerate(t)
        if c.isalnum() and c not in "iIl1.,"
    ]
    return rng.choice(spots) if spots else (0, 0)


def _erase(glyph: np.ndarray, rng: random.Random) -> str:
    """Wipe a band across the glyph: a third of its strokes gone."""
    h, w = glyph.shape[:2]
    if rng.random() < 0.5:
        y0 = round(h * rng.uniform(0.3, 0.45))
        glyph[y0 : y0 + max(2, round(h * 0.3)), :, 3] = 0
        return "erased a horizontal band"
    x0 = round(w * rng.uniform(0.3, 0.45))
    glyph[:, x0 : x0 + max(2, round(w * 0.32)), 3] = 0
    return "erased a vertical band"


SYMMETRIC = 0.9
"""A glyph whose ink lies this much within `NEAR` of its own mirror image's (in its
ink's box, both ways) is symmetric along that axis: mirroring its half draws the glyph
again (U, A, 0, 8, D, B, 日 ...), which no reader would call malformed, though it can
move a tenth of the ink when the glyph is off its box's centre."""
NEAR = 0.02
"""Of the glyph's height: a thin stroke a pixel off its mirror is still on it. Measured
at 64 px: symmetric top to bottom in Noto Sans CJK Bold c e l o x B C D E G H I O X 0 3 8
王, left to right i m n o u v w x A H I M O T U V W X Y 0 1 8 日 目 口 田 王 中 品 人 大 天."""


def symmetric_axes(ink: np.ndarray) -> set[int]:
    """The axes (0: top to bottom, 1: left to right) along which a glyph's ink (a mask,
    best drawn plain: a shadow or a neighbour's overhang is not the glyph's) is
    symmetric."""
    ys, xs = np.nonzero(ink)
    if not len(xs):
        return {0, 1}
    from scipy import ndimage

    box = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    near = max(1, round(NEAR * box.shape[0]))
    grown = ndimage.binary_dilation(box, iterations=near)
    out = set()
    for axis in (0, 1):
        flipped = np.flip(box, axis=axis)
        met = (box & np.flip(grown, axis=axis)).sum() + (flipped & grown).sum()
        if met >= SYMMETRIC * 2 * box.sum():
            out.add(axis)
    return out


def plain_ink(char: str, face: ImageFont.FreeTypeFont) -> np.ndarray:
    """`char` drawn plain in `face`'s font at 64 px (at a small size a pixel is a large
    share of a stroke), as a mask: what `symmetric_axes` judges."""
    big = face.font_variant(size=64)
    canvas = Image.new("L", (192, 192), 0)
    ImageDraw.Draw(canvas).text((64, 32), char, font=big, fill=255)
    return np.asarray(canvas) > 128


def _mirror(glyph: np.ndarray, rng: random.Random, symmetric: set[int]) -> str:
    """One half replaced by the mirror image of the other, across an axis along which
    the glyph is not symmetric (none: nothing is drawn, "")."""
    h, w = glyph.shape[:2]
    axes = [1, 0] if rng.random() < 0.5 else [0, 1]
    axis = next((a for a in axes if a not in symmetric), None)
    if axis == 1:
        half = w // 2
        glyph[:, w - half :] = glyph[:, :half][:, ::-1]
        return "right half mirrored from the left"
    if axis == 0:
        half = h // 2
        glyph[h - half :] = glyph[:half][::-1]
        return "bottom half mirrored from the top"
    return ""


def _stroke(glyph: np.ndarray, rng: random.Random) -> str:
    """A stroke across the glyph that its shape does not have."""
    h, w = glyph.shape[:2]
    ink = glyph[..., 3] > 128
    colour = glyph[ink][:, :3].mean(axis=0) if ink.any() else np.array([0.0, 0.0, 0.0])
    layer = Image.fromarray(glyph, "RGBA")
    draw = ImageDraw.Draw(layer)
    width = max(2, round(min(h, w) * 0.12))
    fill = (*(int(c) for c in colour), 255)
    if rng.random() < 0.5:
        y = round(h * rng.uniform(0.35, 0.65))
        draw.line((0, y - width, w - 1, y + width), fill=fill, width=width)
        how = "a slanted stroke added"
    else:
        draw.line((0, 0, w - 1, h - 1), fill=fill, width=width)
        how = "a diagonal stroke added"
    glyph[:] = np.asarray(layer)
    return how


def _merge(
    glyph: np.ndarray, rng: random.Random, other: np.ndarray | None, symmetric: set[int]
) -> str:
    """The right half of the glyph taken from its neighbour: two halves that make no glyph."""
    if other is None or other.shape != glyph.shape:
        return _mirror(glyph, rng, symmetric)
    w = glyph.shape[1]
    glyph[:, w // 2 :] = other[:, w // 2 :]
    return "right half merged from the next glyph"


GLYPH_DAMAGE = ("erase", "mirror", "stroke", "merge")
VISIBLE_DAMAGE = 0.1
"""Share of a glyph's ink a damage must change: mirroring a symmetric glyph (0, H, 口)
or merging two alike halves changes nothing, and a fault nobody can see is no fault."""


def _apply(
    how: str, glyph: np.ndarray, rng: random.Random, other: np.ndarray | None, symmetric: set[int]
) -> str:
    if how == "erase":
        return _erase(glyph, rng)
    if how == "mirror":
        return _mirror(glyph, rng, symmetric)
    if how == "stroke":
        return _stroke(glyph, rng)
    return _merge(glyph, rng, other, symmetric)


def damage_glyph(
    layer: Image.Image,
    box: tuple[int, int, int, int],
    rng: random.Random,
    neighbour: tuple[int, int, int, int] | None = None,
    plain: np.ndarray | None = None,
) -> str:
    """Damage the glyph at `box` of an RGBA text layer in place; says how. A damage that
    changes under `VISIBLE_DAMAGE` of the ink gives way to the next one; where none
    does, the one that changes most is drawn. `plain` (`plain_ink`) is the glyph
    drawn without outline or shadow, whose symmetry a mirror respects (else the box's
    ink is judged)."""
    pixels = np.array(layer)
    x0, y0, x1, y1 = box
    before = pixels[y0:y1, x0:x1].copy()
    other = None
    if neighbour is not None:
        nx0, ny0 = neighbour[0], neighbour[1]
        other = pixels[ny0 : ny0 + (y1 - y0), nx0 : nx0 + (x1 - x0)].copy()
    ink = before[..., 3] > 128
    symmetric = symmetric_axes(ink if plain is None else plain)
    first = rng.randrange(len(GLYPH_DAMAGE))
    order = GLYPH_DAMAGE[first:] + GLYPH_DAMAGE[:first]
    tried = []
    for how in order:
        glyph = before.copy()
        said = _apply(how, glyph, rng, other, symmetric)
        if not said:
            continue
        changed = np.count_nonzero(ink != (glyph[..., 3] > 128))
        tried.append((changed, said, glyph))
        if changed >= VISIBLE_DAMAGE * max(1, np.count_nonzero(ink)):
            break
    _, said, glyph = max(tried, key=lambda t: t[0])
    pixels[y0:y1, x0:x1] = glyph
    layer.paste(Image.fromarray(pixels, "RGBA"))
    return said
