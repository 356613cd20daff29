"""Procedural poster backgrounds: one named motif painted in a style's palette.

``draw_background`` returns an RGB image whose dominant colour is the palette's
``background``; pattern elements use ``primary``, ``secondary`` and ``accent`` at low
opacity (or as thin elements) so that text drawn over the background later stays
readable. Regular patterns are computed as anti-aliased distance fields with numpy;
scattered shapes are drawn at 2x into per-colour masks and downsampled.

All randomness comes from the ``rng`` argument: equal arguments and an equal rng state
give identical pixels. Pattern sizes scale with the image size.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from datapipe.drawables import MOTIFS

RGB = tuple[int, int, int]


def _rgb(value: Sequence[int]) -> RGB:
    return (int(value[0]), int(value[1]), int(value[2]))


def _dist(a: Sequence[float], b: Sequence[float]) -> float:
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a[:3], b[:3], strict=True)))


class _Ctx:
    """Canvas, size, coordinate grids and pattern colours for one background."""

    def __init__(self, size: tuple[int, int], palette: Mapping[str, Sequence[int]]) -> None:
        self.w, self.h = int(size[0]), int(size[1])
        self.s = float(min(self.w, self.h))
        self.bg = _rgb(palette["background"])
        self.img = Image.new("RGB", (self.w, self.h), self.bg)
        self.x = np.arange(self.w, dtype=np.float32)[None, :] + 0.5
        self.y = np.arange(self.h, dtype=np.float32)[:, None] + 0.5
        self.primary = self._visible(palette.get("primary", self.bg))
        self.secondary = self._visible(palette.get("secondary", self.bg))
        self.accent = self._visible(palette.get("accent", self.bg))
        self.colors = (self.primary, self.secondary, self.accent)

    def _visible(self, color: Sequence[int]) -> RGB:
        """A pattern colour; one too close to the background is replaced by a tint of it."""
        c = _rgb(color)
        if _dist(c, self.bg) >= 28:
            return c
        lum = 0.299 * self.bg[0] + 0.587 * self.bg[1] + 0.114 * self.bg[2]
        t = (0, 0, 0) if lum > 110 else (255, 255, 255)
        return _rgb([round(b + (v - b) * 0.35) for b, v in zip(self.bg, t, strict=True)])

    def blend(
        self, alpha: np.ndarray, color: Sequence[int], at: tuple[int, int] | None = None
    ) -> None:
        """Composite ``color`` over the canvas with per-pixel opacity ``alpha`` (0..1).

        ``alpha`` covers the whole canvas (it may be a broadcastable row or column), or a
        patch whose top-left corner is ``at``.
        """
        if at is None:
            alpha = np.broadcast_to(alpha, (self.h, self.w))
        a8 = np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)
        self.paste(Image.fromarray(np.ascontiguousarray(a8)), color, at)

    def paste(
        self, mask: Image.Image, color: Sequence[int], at: tuple[int, int] | None = None
    ) -> None:
        """Composite ``color`` through an L ``mask`` (255 = opaque)."""
        self.img.paste(_rgb(color), at or (0, 0), mask)

    def smooth(self, field: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """Evaluate a smooth field on a coarse grid (in [0,1] x [0,1]) and upsample it."""
        cw, ch = min(self.w, 96), min(self.h, 96)
        u = ((np.arange(cw, dtype=np.float32) + 0.5) / cw)[None, :]
        v = ((np.arange(ch, dtype=np.float32) + 0.5) / ch)[:, None]
        coarse = np.ascontiguousarray(np.broadcast_to(field(u, v), (ch, cw)), dtype=np.float32)
        img = Image.fromarray(coarse).resize((self.w, self.h), Image.Resampling.BILINEAR)
        return np.asarray(img)

    def image(self) -> Image.Image:
        return self.img


def _aa(d: np.ndarray) -> np.ndarray:
    """Coverage of a pixel by a shape, from the signed distance ``d`` (positive inside)."""
    return np.clip(d + 0.5, 0.0, 1.0)


class _Masks:
    """Per-colour L masks drawn at 2x (for smooth edges), downsampled, then blended."""

    def __init__(self, ctx: _Ctx, n: int) -> None:
        self.ctx = ctx
        self.k = 2 if max(ctx.w, ctx.h) <= 1200 else 1
        size = (ctx.w * self.k, ctx.h * self.k)
        self.imgs = [Image.new("L", size, 0) for _ in range(n)]
        self.draws = [ImageDraw.Draw(im) for im in self.imgs]

    def pts(self, pts: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
        return [(x * self.k, y * self.k) for x, y in pts]

    def polygon(self, i: int, pts: Sequence[tuple[float, float]], opacity: float) -> None:
        self.draws[i].polygon(self.pts(pts), fill=round(255 * opacity))

    def outline(
        self, i: int, pts: Sequence[tuple[float, float]], width: float, opacity: float
    ) -> None:
        p = self.pts(pts)
        self.draws[i].line(
            [*p, p[0], p[1]],
            fill=round(255 * opacity),
            width=max(1, round(width * self.k)),
            joint="curve",
        )

    def ellipse(
        self, i: int, cx: float, cy: float, r: float, opacity: float, width: float = 0.0
    ) -> None:
        k = self.k
        box = ((cx - r) * k, (cy - r) * k, (cx + r) * k, (cy + r) * k)
        v = round(255 * opacity)
        if width > 0:
            self.draws[i].ellipse(box, outline=v, width=max(1, round(width * k)))
        else:
            self.draws[i].ellipse(box, fill=v)

    def blend(self, colors: Sequence[Sequence[int]]) -> None:
        for im, col in zip(self.imgs, colors, strict=True):
            self.ctx.paste(im.reduce(self.k) if self.k > 1 else im, col)


def _polygon_pts(cx: float, cy: float, r: float, n: int, rot: float) -> list[tuple[float, float]]:
    return [
        (cx + r * math.cos(rot + math.tau * i / n), cy + r * math.sin(rot + math.tau * i / n))
        for i in range(n)
    ]


# --------------------------------------------------------------------------- motifs


def _vignette(c: _Ctx, strength: float) -> None:
    def field(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        r2 = (2 * u - 1) ** 2 + (2 * v - 1) ** 2
        return np.clip((r2 - 0.45) / 1.55, 0.0, 1.0) * strength

    lum = 0.299 * c.bg[0] + 0.587 * c.bg[1] + 0.114 * c.bg[2]
    tone = [v * 0.55 for v in c.bg] if lum > 40 else [v + (255 - v) * 0.3 for v in c.bg]
    c.blend(c.smooth(field), _rgb([round(v) for v in tone]))


def _plain(c: _Ctx, rng: random.Random) -> None:
    _vignette(c, rng.uniform(0.05, 0.12))


def _gradient(c: _Ctx, rng: random.Random) -> None:
    kind = rng.choice(["vertical", "vertical", "diagonal", "diagonal_rev"])
    flip = rng.random() < 0.3
    strength = rng.uniform(0.32, 0.48)

    def field(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        if kind == "vertical":
            t = v + 0 * u
        elif kind == "diagonal":
            t = (u + v) * 0.5
        else:
            t = ((1 - u) + v) * 0.5
        if flip:
            t = 1.0 - t
        return t * t * (3 - 2 * t) * strength

    c.blend(c.smooth(field), c.secondary)


def _dots(c: _Ctx, rng: random.Random) -> None:
    sp = max(6.0, c.s * rng.uniform(0.055, 0.09))
    rad = sp * rng.uniform(0.17, 0.26)
    gy = c.y / sp
    row = np.floor(gy)
    fy = (gy - row - 0.5) * sp
    gx = c.x / sp + 0.5 * (row % 2)
    fx = (gx - np.floor(gx) - 0.5) * sp
    d = np.sqrt(fx * fx + fy * fy)
    color = c.primary if rng.random() < 0.7 else c.secondary
    c.blend(_aa(rad - d) * rng.uniform(0.25, 0.35), color)


def _stripe_field(u: np.ndarray, period: float, width: float) -> np.ndarray:
    d = np.abs((u / period) % 1.0 - 0.5) * period
    return _aa(width / 2 - d)


def _stripes(c: _Ctx, rng: random.Random) -> None:
    period = max(6.0, c.s * rng.uniform(0.08, 0.14))
    u = c.x if rng.random() < 0.5 else c.y
    width = period * rng.uniform(0.3, 0.45)
    c.blend(_stripe_field(u, period, width) * rng.uniform(0.14, 0.22), c.primary)
    if rng.random() < 0.6:
        thin = max(1.0, c.s * 0.004)
        c.blend(_stripe_field(u + period / 2, period, thin) * 0.3, c.accent)


def _diagonal_stripes(c: _Ctx, rng: random.Random) -> None:
    period = max(6.0, c.s * rng.uniform(0.07, 0.12))
    sign = 1.0 if rng.random() < 0.5 else -1.0
    u = (c.x + sign * c.y) * (1 / math.sqrt(2))
    width = period * rng.uniform(0.28, 0.42)
    color = c.primary if rng.random() < 0.6 else c.secondary
    c.blend(_stripe_field(u, period, width) * rng.uniform(0.14, 0.22), color)


def _grid(c: _Ctx, rng: random.Random) -> None:
    cell = max(6.0, c.s * rng.uniform(0.055, 0.09))
    lw = max(1.0, c.s * 0.003)
    ox, oy = rng.uniform(0, cell), rng.uniform(0, cell)
    lines = np.maximum(_stripe_field(c.x - ox, cell, lw), _stripe_field(c.y - oy, cell, lw))
    c.blend(lines * 0.32, c.primary)
    if rng.random() < 0.6:
        major = cell * 4
        lines = np.maximum(
            _stripe_field(c.x - ox, major, lw * 2), _stripe_field(c.y - oy, major, lw * 2)
        )
        c.blend(lines * 0.3, c.accent)


def _checker(c: _Ctx, rng: random.Random) -> None:
    cell = max(4.0, c.s * rng.uniform(0.08, 0.14))
    if rng.random() < 0.3:
        u = (c.x + c.y) * (1 / math.sqrt(2))
        v = (c.x - c.y) * (1 / math.sqrt(2))
    else:
        u, v = c.x, c.y
    parity = (np.floor(u / cell) + np.floor(v / cell)) % 2
    c.blend(parity * rng.uniform(0.09, 0.13), c.secondary)


def _halftone(c: _Ctx, rng: random.Random) -> None:
    sp = max(5.0, c.s * rng.uniform(0.035, 0.055))
    u = (c.x + c.y) * (1 / math.sqrt(2))
    v = (c.x - c.y) * (1 / math.sqrt(2))
    fu = ((u / sp) % 1.0 - 0.5) * sp
    fv = ((v / sp) % 1.0 - 0.5) * sp
    d = np.sqrt(fu * fu + fv * fv)
    corner_x = 0.0 if rng.random() < 0.5 else float(c.w)
    corner_y = 0.0 if rng.random() < 0.5 else float(c.h)
    reach = math.hypot(c.w, c.h) * rng.uniform(0.75, 1.0)
    g = 1.0 - np.sqrt((c.x - corner_x) ** 2 + (c.y - corner_y) ** 2) / reach
    rad = sp * 0.5 * np.clip(g, 0.0, 1.0) ** 1.1
    c.blend(_aa(rad - d) * rng.uniform(0.26, 0.34), c.primary)


def _waves(c: _Ctx, rng: random.Random) -> None:
    period = max(6.0, c.s * rng.uniform(0.06, 0.1))
    amp = period * rng.uniform(0.2, 0.35)
    wavelength = c.s * rng.uniform(0.2, 0.35)
    phase = rng.uniform(0, math.tau)
    yy = c.y + amp * np.sin(c.x * (math.tau / wavelength) + phase)
    lw = max(1.0, period * rng.uniform(0.14, 0.22))
    field = _stripe_field(yy, period, lw)
    band = np.floor(yy / period + 0.5) % 2
    op = rng.uniform(0.26, 0.34)
    c.blend(field * (1 - band) * op, c.primary)
    c.blend(field * band * op, c.secondary)


def _sunburst(c: _Ctx, rng: random.Random) -> None:
    cx = c.w * rng.uniform(0.35, 0.65)
    cy = c.h * rng.choice([rng.uniform(0.3, 0.5), rng.uniform(0.75, 1.0)])
    n = rng.choice([14, 16, 18, 20, 24])
    dx, dy = c.x - cx, c.y - cy
    r = np.sqrt(dx * dx + dy * dy)
    frac = (np.arctan2(dy, dx) * (n / math.tau) + rng.random()) % 1.0
    edge = np.minimum(np.minimum(frac, np.abs(frac - 0.5)), 1.0 - frac) * (math.tau / n) * r
    inside = frac < 0.5
    alpha = np.where(inside, _aa(edge), _aa(-edge))
    fade = np.clip(r / (0.06 * c.s + 1.0), 0.0, 1.0)
    c.blend(alpha * fade * rng.uniform(0.1, 0.15), c.primary)
    glow = np.clip(1.0 - r / (0.35 * c.s), 0.0, 1.0) ** 2
    c.blend(glow * 0.15, c.accent)


def _confetti(c: _Ctx, rng: random.Random) -> None:
    m = _Masks(c, 3)
    piece = c.s * rng.uniform(0.03, 0.045)
    n = int(0.11 * c.w * c.h / (piece * piece * 0.45)) + 3
    for _ in range(n):
        i = rng.randrange(3)
        x, y = rng.uniform(-piece, c.w + piece), rng.uniform(-piece, c.h + piece)
        kind = rng.random()
        size = piece * rng.uniform(0.7, 1.3)
        if kind < 0.55:
            ang = rng.uniform(0, math.pi)
            hw, hh = size / 2, size * 0.18
            ca, sa = math.cos(ang), math.sin(ang)
            pts = [
                (x + ca * px - sa * py, y + sa * px + ca * py)
                for px, py in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))
            ]
            m.polygon(i, pts, 0.55)
        elif kind < 0.8:
            m.ellipse(i, x, y, size * 0.22, 0.55)
        else:
            m.polygon(i, _polygon_pts(x, y, size * 0.3, 3, rng.uniform(0, math.tau)), 0.55)
    m.blend(c.colors)


def _circles(c: _Ctx, rng: random.Random) -> None:
    m = _Masks(c, 3)
    n = rng.randint(7, 12) + int(c.w * c.h / (c.s * c.s) * 2)
    for _ in range(n):
        i = rng.randrange(3)
        r = c.s * rng.uniform(0.06, 0.24)
        x, y = rng.uniform(-0.1 * c.w, 1.1 * c.w), rng.uniform(-0.1 * c.h, 1.1 * c.h)
        if rng.random() < 0.45:
            m.ellipse(i, x, y, r, rng.uniform(0.1, 0.16))
        else:
            m.ellipse(i, x, y, r, rng.uniform(0.25, 0.35), width=max(1.0, c.s * 0.006))
    m.blend(c.colors)


def _triangles(c: _Ctx, rng: random.Random) -> None:
    m = _Masks(c, 3)
    n = int(22 * c.w * c.h / (c.s * c.s)) + rng.randint(0, 6)
    for _ in range(n):
        i = rng.randrange(3)
        r = c.s * rng.uniform(0.03, 0.09)
        x, y = rng.uniform(0, c.w), rng.uniform(0, c.h)
        pts = _polygon_pts(x, y, r, 3, rng.uniform(0, math.tau))
        if rng.random() < 0.5:
            m.polygon(i, pts, rng.uniform(0.22, 0.3))
        else:
            m.outline(i, pts, max(1.0, c.s * 0.005), 0.4)
    m.blend(c.colors)


def _grain(c: _Ctx, rng: random.Random) -> None:
    gen = np.random.default_rng(rng.getrandbits(32))
    sigma = rng.uniform(7.0, 12.0)
    cw, ch = max(2, c.w // 48), max(2, c.h // 48)
    coarse = gen.standard_normal((ch, cw), dtype=np.float32)
    mottle = np.asarray(Image.fromarray(coarse).resize((c.w, c.h), Image.Resampling.BILINEAR))
    c.blend(np.clip(mottle, 0.0, 1.0) * 0.05, c.secondary)
    noise = gen.standard_normal((c.h, c.w), dtype=np.float32) * sigma
    noise += mottle * (sigma * 0.6)
    arr = np.asarray(c.img, dtype=np.float32) + noise[..., None]
    c.img = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8))


def _frame(c: _Ctx, rng: random.Random) -> None:
    _vignette(c, 0.05)
    e = np.minimum(np.minimum(c.x, c.w - c.x), np.minimum(c.y, c.h - c.y))
    margin = c.s * rng.uniform(0.025, 0.045)
    thick = max(1.5, c.s * rng.uniform(0.008, 0.014))
    c.blend(_aa(e - margin) * _aa(margin + thick - e) * 0.85, c.primary)
    gap = margin + thick + max(2.0, c.s * 0.014)
    thin = max(1.0, c.s * 0.003)
    c.blend(_aa(e - gap) * _aa(gap + thin - e) * 0.75, c.accent)
    d = gap + c.s * 0.02
    rad = max(2.0, c.s * 0.012)
    half = math.ceil(rad) + 2
    for cx, cy in ((d, d), (c.w - d, d), (d, c.h - d), (c.w - d, c.h - d)):
        x0 = max(0, int(cx) - half)
        y0 = max(0, int(cy) - half)
        x1, y1 = min(c.w, int(cx) + half + 1), min(c.h, int(cy) + half + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        px = c.x[:, x0:x1]
        py = c.y[y0:y1, :]
        diamond = rad - (np.abs(px - cx) + np.abs(py - cy))
        c.blend(_aa(diamond) * 0.8, c.accent, at=(x0, y0))


def _blobs(c: _Ctx, rng: random.Random) -> None:
    m = _Masks(c, 3)
    n = rng.randint(3, 5) + int(c.w * c.h / (c.s * c.s))
    for j in range(n):
        i = j % 3
        rad = c.s * rng.uniform(0.16, 0.32)
        if rng.random() < 0.7:
            x = rng.choice([0.0, float(c.w)]) + rng.uniform(-0.1, 0.1) * c.w
            y = rng.uniform(0, c.h)
        else:
            x, y = rng.uniform(0, c.w), rng.uniform(0, c.h)
        harm = [(k, rng.uniform(0.04, 0.14), rng.uniform(0, math.tau)) for k in (2, 3, 5)]
        pts = []
        for q in range(72):
            t = math.tau * q / 72
            rr = rad * (1 + sum(a * math.sin(k * t + ph) for k, a, ph in harm))
            pts.append((x + rr * math.cos(t), y + rr * math.sin(t)))
        m.polygon(i, pts, rng.uniform(0.14, 0.2))
    m.blend(c.colors)


_Painter = Callable[[_Ctx, random.Random], None]
_PAINTERS: dict[str, _Painter] = {
    "plain": _plain,
    "gradient": _gradient,
    "dots": _dots,
    "stripes": _stripes,
    "diagonal_stripes": _diagonal_stripes,
    "grid": _grid,
    "checker": _checker,
    "halftone": _halftone,
    "waves": _waves,
    "sunburst": _sunburst,
    "confetti": _confetti,
    "circles": _circles,
    "triangles": _triangles,
    "grain": _grain,
    "frame": _frame,
    "blobs": _blobs,
}
assert tuple(_PAINTERS) == MOTIFS


def draw_background(
    motif: str,
    size: tuple[int, int],
    palette: Mapping[str, tuple[int, int, int]],
    rng: random.Random,
) -> Image.Image:
    """RGB image of exactly `size`."""
    painter = _PAINTERS.get(motif)
    if painter is None:
        raise ValueError(f"unknown background motif {motif!r}; valid motifs: {', '.join(MOTIFS)}")
    w, h = int(size[0]), int(size[1])
    if w < 1 or h < 1:
        raise ValueError(f"background size must be positive, got {size!r}")
    ctx = _Ctx((w, h), palette)
    painter(ctx, rng)
    return ctx.image()
