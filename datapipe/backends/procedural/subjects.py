"""Procedural subject drawings: small cartoon objects that stand for a poster's entity.

``draw_subject`` paints one named object (a bottle, a tree, a film reel...) into an RGBA
image of the requested size. Every object is built from several primitives with a base
colour, a darker shade for depth, glossy highlights and a dark outline, so that a person
recognises what it is. Drawing happens at 2x or 3x and is downscaled with LANCZOS; the
alpha channel is then thresholded so it is strictly 0 or 255 and can serve as the
ground-truth subject mask (pixels with alpha 0 have RGB (0, 0, 0)).

All randomness comes from the ``rng`` argument: equal arguments and an equal rng state
give identical pixels.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageDraw

from datapipe.drawables import SHAPES

RGB = tuple[int, int, int]
Pt = tuple[float, float]


_MARGIN = 0.04  # free border on each side, as a fraction of the image size

_BLACK: RGB = (0, 0, 0)
_WHITE: RGB = (255, 255, 255)
_INK: RGB = (20, 18, 26)
_CREAM: RGB = (250, 245, 232)
_PAPER: RGB = (252, 250, 244)
_METAL: RGB = (196, 201, 210)
_GOLD: RGB = (226, 184, 82)
_WOOD: RGB = (160, 108, 62)
_DARKWOOD: RGB = (98, 62, 40)
_GREEN: RGB = (98, 176, 76)
_LEAFGREEN: RGB = (72, 150, 62)
_SCREEN: RGB = (28, 32, 46)
_RED: RGB = (214, 58, 50)
_ORANGE: RGB = (248, 162, 42)
_YELLOW: RGB = (252, 208, 72)
_TAN: RGB = (222, 164, 92)
_DARK: RGB = (44, 44, 52)


# --------------------------------------------------------------------------- colour helpers


def _mix(a: Sequence[int], b: Sequence[int], t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _dark(c: Sequence[int], t: float = 0.25) -> RGB:
    return _mix(c, _BLACK, t)


def _lite(c: Sequence[int], t: float = 0.35) -> RGB:
    return _mix(c, _WHITE, t)


def _dist(a: Sequence[int], b: Sequence[int]) -> float:
    return math.sqrt(sum((int(x) - int(y)) ** 2 for x, y in zip(a[:3], b[:3], strict=True)))


class _Ink:
    """The colours one subject is painted with, derived from its colour and palette."""

    def __init__(self, color: Sequence[int], palette: Sequence[Sequence[int]]) -> None:
        base = (int(color[0]), int(color[1]), int(color[2]))
        self.base = base
        self.shade = _dark(base, 0.22)
        self.deep = _dark(base, 0.42)
        self.light = _lite(base, 0.35)
        self.gloss = _lite(base, 0.72)
        self.line = _mix(base, _INK, 0.74)
        picks: list[RGB] = []
        fallback = [(250, 200, 70), (72, 152, 222), (236, 96, 120), (245, 243, 236)]
        for c in [*palette, *fallback]:
            rgb = (int(c[0]), int(c[1]), int(c[2]))
            if _dist(rgb, base) > 60 and all(_dist(rgb, d) > 40 for d in picks):
                picks.append(rgb)
            if len(picks) == 3:
                break
        picks += [(245, 243, 236)] * (3 - len(picks))
        self.p1, self.p2, self.p3 = picks[0], picks[1], picks[2]

    def tint(self, canon: RGB, t: float = 0.3) -> RGB:
        """A canonical colour (bun, crust...) nudged towards the subject colour."""
        return _mix(canon, self.base, t)


# --------------------------------------------------------------------------- geometry helpers


def _bez(p0: Pt, p1: Pt, p2: Pt, n: int = 12) -> list[Pt]:
    out = []
    for i in range(n + 1):
        t = i / n
        u = 1 - t
        out.append(
            (
                u * u * p0[0] + 2 * u * t * p1[0] + t * t * p2[0],
                u * u * p0[1] + 2 * u * t * p1[1] + t * t * p2[1],
            )
        )
    return out


def _bez3(p0: Pt, p1: Pt, p2: Pt, p3: Pt, n: int = 16) -> list[Pt]:
    out = []
    for i in range(n + 1):
        t = i / n
        u = 1 - t
        a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
        out.append(
            (
                a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
                a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1],
            )
        )
    return out


def _rot(pts: Sequence[Pt], deg: float, center: Pt) -> list[Pt]:
    th = math.radians(deg)
    c, s = math.cos(th), math.sin(th)
    cx, cy = center
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in pts]


def _shift(pts: Sequence[Pt], dx: float, dy: float) -> list[Pt]:
    return [(x + dx, y + dy) for x, y in pts]


def _lerp(a: Pt, b: Pt, t: float) -> Pt:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def _vesica(p0: Pt, p1: Pt, bulge: float, skew: float = 0.0) -> list[Pt]:
    """A leaf or petal outline from p0 to p1; ``bulge`` is the half width over the length."""
    dx, dy = p1[0] - p0[0], p1[1] - p0[1]
    length = math.hypot(dx, dy) or 1.0
    nx, ny = -dy / length, dx / length
    w = bulge * length * 1.33
    wl, wr = w * (1 + skew), w * (1 - skew)
    a1, a2 = _lerp(p0, p1, 0.25), _lerp(p0, p1, 0.7)
    left = _bez3(p0, (a1[0] + nx * wl, a1[1] + ny * wl), (a2[0] + nx * wl, a2[1] + ny * wl), p1)
    right = _bez3(p1, (a2[0] - nx * wr, a2[1] - ny * wr), (a1[0] - nx * wr, a1[1] - ny * wr), p0)
    return left + right[1:-1]


def _star(cx: float, cy: float, outer: float, inner: float, n: int = 5) -> list[Pt]:
    pts = []
    for i in range(2 * n):
        rad = outer if i % 2 == 0 else inner
        t = math.radians(-90 + 180 * i / n)
        pts.append((cx + rad * math.cos(t), cy + rad * math.sin(t)))
    return pts


def _band(cx: float, cy: float, ro: Pt, ri: Pt, a0: float, a1: float, n: int = 40) -> list[Pt]:
    """An elliptical arc band (outer radii ``ro``, inner ``ri``) between two angles."""
    outer = [
        (
            cx + ro[0] * math.cos(math.radians(a0 + (a1 - a0) * i / n)),
            cy + ro[1] * math.sin(math.radians(a0 + (a1 - a0) * i / n)),
        )
        for i in range(n + 1)
    ]
    inner = [
        (
            cx + ri[0] * math.cos(math.radians(a1 + (a0 - a1) * i / n)),
            cy + ri[1] * math.sin(math.radians(a1 + (a0 - a1) * i / n)),
        )
        for i in range(n + 1)
    ]
    return outer + inner


# --------------------------------------------------------------------------- the pen


class _Pen:
    """Draws in design units: x in [0, a], y in [0, 1], mapped (rotated, scaled) to pixels."""

    def __init__(
        self,
        img: Image.Image,
        aspect: float,
        scale: float,
        center: Pt,
        theta: float,
        ink: _Ink,
        ss: int,
    ) -> None:
        self.a = aspect
        self.S = scale
        self.ink = ink
        th = math.radians(theta)
        self._c, self._s = math.cos(th), math.sin(th)
        self._cx, self._cy = aspect / 2.0, 0.5
        self._px, self._py = center
        self.lw = max(float(ss), 0.011 * scale) / scale
        self._stack: list[tuple[Image.Image, ImageDraw.ImageDraw, int, int]] = [
            (img, ImageDraw.Draw(img), 0, 0)
        ]

    # ---- coordinates
    def _tp(self, pts: Sequence[Pt]) -> list[tuple[float, float]]:
        _, _, ox, oy = self._stack[-1]
        c, s, sc = self._c, self._s, self.S
        cx, cy, px, py = self._cx, self._cy, self._px - ox, self._py - oy
        out = []
        for x, y in pts:
            dx, dy = (x - cx) * sc, (y - cy) * sc
            out.append((px + dx * c - dy * s, py + dx * s + dy * c))
        return out

    def _n(self, radius: float) -> int:
        return int(min(96, max(12, 4.0 * math.sqrt(max(radius * self.S, 1.0)))))

    def ell(
        self,
        cx: float,
        cy: float,
        rx: float,
        ry: float | None = None,
        rot: float = 0.0,
        a0: float = 0.0,
        a1: float = 360.0,
    ) -> list[Pt]:
        """Ellipse (or arc from a0 to a1 degrees, 90 = down) as points."""
        ry = rx if ry is None else ry
        n = self._n(max(rx, ry))
        span = a1 - a0
        if abs(span) >= 360:
            ts = [a0 + span * i / n for i in range(n)]
        else:
            m = max(2, math.ceil(n * abs(span) / 360))
            ts = [a0 + span * i / m for i in range(m + 1)]
        pts = [
            (cx + rx * math.cos(math.radians(t)), cy + ry * math.sin(math.radians(t))) for t in ts
        ]
        return _rot(pts, rot, (cx, cy)) if rot else pts

    def rr(self, x0: float, y0: float, x1: float, y1: float, rad: float = 0.0) -> list[Pt]:
        """Rounded rectangle as points."""
        rad = max(0.0, min(rad, (x1 - x0) / 2, (y1 - y0) / 2))
        if rad <= 0:
            return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        return (
            self.ell(x0 + rad, y0 + rad, rad, a0=180, a1=270)
            + self.ell(x1 - rad, y0 + rad, rad, a0=270, a1=360)
            + self.ell(x1 - rad, y1 - rad, rad, a0=0, a1=90)
            + self.ell(x0 + rad, y1 - rad, rad, a0=90, a1=180)
        )

    # ---- primitives
    @property
    def _draw(self) -> ImageDraw.ImageDraw:
        return self._stack[-1][1]

    def fill(self, pts: Sequence[Pt], col: RGB) -> None:
        if len(pts) >= 3:
            self._draw.polygon(self._tp(pts), fill=(*col, 255))

    def hole(self, pts: Sequence[Pt], line: bool = True) -> None:
        """Punch a transparent hole (then outline its rim)."""
        self._draw.polygon(self._tp(pts), fill=(0, 0, 0, 0))
        if line:
            self.outline(pts)

    def stroke(
        self,
        pts: Sequence[Pt],
        col: RGB,
        w: float,
        closed: bool = False,
        caps: bool = True,
    ) -> None:
        px = self._tp(list(pts) + ([pts[0], pts[1]] if closed else []))
        width = max(1, round(w * self.S))
        ink = (*col, 255)
        self._draw.line(px, fill=ink, width=width)
        if width < 3:
            return
        # Round the joints where the path turns sharply (Pillow's joint="curve" rounds
        # every vertex and is several times slower on our many-vertex curves).
        r = width / 2.0
        dots = [px[0], px[-1]] if caps and not closed else []
        if len(px) >= 3:
            arr = np.asarray(px, dtype=np.float64)
            seg = np.diff(arr, axis=0)
            a, b = seg[:-1], seg[1:]
            dot = (a * b).sum(axis=1)
            norm = np.hypot(a[:, 0], a[:, 1]) * np.hypot(b[:, 0], b[:, 1]) + 1e-9
            dots += [px[i + 1] for i in np.flatnonzero(dot / norm < 0.97)]
        for x, y in dots:
            self._draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)

    def outline(self, pts: Sequence[Pt], w: float | None = None) -> None:
        self.stroke(pts, self.ink.line, self.lw if w is None else w, closed=True, caps=False)

    def tube(self, pts: Sequence[Pt], col: RGB, w: float) -> None:
        """A thick stroke with an outline (a string, a stem, a handle)."""
        self.stroke(pts, self.ink.line, w + 2 * self.lw)
        self.stroke(pts, col, w)

    def shape(self, pts: Sequence[Pt], col: RGB, shade: float = 0.14, line: bool = True) -> None:
        """A filled polygon with a darker crescent on its lower right and an outline."""
        if shade > 0:
            self.fill(pts, _dark(col, 0.2))
            xs = [x for x, _ in pts]
            ys = [y for _, y in pts]
            d = shade * min(max(xs) - min(xs), max(ys) - min(ys))
            with self.clip(pts):
                self.fill(_shift(pts, -d, -0.75 * d), col)
        else:
            self.fill(pts, col)
        if line:
            self.outline(pts)

    def union(self, polys: Sequence[Sequence[Pt]], col: RGB, shade: float = 0.12) -> None:
        """Several polygons filled as one silhouette with a single outer outline."""
        for poly in polys:
            self.stroke(poly, self.ink.line, 2 * self.lw, closed=True, caps=False)
        if shade > 0:
            for poly in polys:
                self.fill(poly, _dark(col, 0.2))
            xs = [x for poly in polys for x, _ in poly]
            ys = [y for poly in polys for _, y in poly]
            d = shade * min(max(xs) - min(xs), max(ys) - min(ys))
            with self.clip(*polys):
                for poly in polys:
                    self.fill(_shift(poly, -d, -0.75 * d), col)
        else:
            for poly in polys:
                self.fill(poly, col)

    def circle(self, cx: float, cy: float, r: float, col: RGB, shade: float = 0.14) -> list[Pt]:
        pts = self.ell(cx, cy, r)
        self.shape(pts, col, shade)
        return pts

    def gloss(self, pts: Sequence[Pt], w: float, col: RGB | None = None) -> None:
        self.stroke(pts, self.ink.gloss if col is None else col, w)

    @contextmanager
    def clip(self, *polys: Sequence[Pt]) -> Iterator[None]:
        """Restrict drawing inside the ``with`` block to the union of ``polys``."""
        img, _, ox, oy = self._stack[-1]
        pix = [self._tp(p) for p in polys]
        xs = [x for p in pix for x, _ in p]
        ys = [y for p in pix for _, y in p]
        x0 = min(img.width - 1, max(0, int(min(xs)) - 2))
        y0 = min(img.height - 1, max(0, int(min(ys)) - 2))
        x1 = max(x0 + 1, min(img.width, int(max(xs)) + 3))
        y1 = max(y0 + 1, min(img.height, int(max(ys)) + 3))
        layer = img.crop((x0, y0, x1, y1))
        mask = Image.new("L", layer.size, 0)
        md = ImageDraw.Draw(mask)
        for p in pix:
            md.polygon([(x - x0, y - y0) for x, y in p], fill=255)
        self._stack.append((layer, ImageDraw.Draw(layer), ox + x0, oy + y0))
        try:
            yield
        finally:
            self._stack.pop()
        img.paste(layer, (x0, y0), mask)


# =========================================================================== products


def _bottle(p: _Pen, k: _Ink, r: random.Random) -> None:
    cx = p.a / 2
    nw = 0.068 + r.uniform(-0.008, 0.012)
    bw = cx - 0.012
    sh = 0.27 + r.uniform(-0.04, 0.04)
    bt = sh + 0.13
    body = [(cx - nw, 0.09), (cx - nw, sh)]
    body += _bez((cx - nw, sh), (cx - bw, sh + 0.02), (cx - bw, bt))
    body += p.ell(cx - bw + 0.06, 0.93, 0.06, a0=180, a1=90)
    body += p.ell(cx + bw - 0.06, 0.93, 0.06, a0=90, a1=0)
    body += _bez((cx + bw, bt), (cx + bw, sh + 0.02), (cx + nw, sh))
    body += [(cx + nw, 0.09)]
    p.shape(body, k.base, shade=0.2)
    ly0 = bt + 0.09 + r.uniform(-0.02, 0.03)
    ly1 = ly0 + 0.25 + r.uniform(-0.03, 0.03)
    with p.clip(body):
        p.shape([(0, ly0), (p.a, ly0), (p.a, ly1), (0, ly1)], k.p1, shade=0.25)
        p.fill([(0, ly0 + 0.025), (p.a, ly0 + 0.025), (p.a, ly0 + 0.05), (0, ly0 + 0.05)], k.p2)
    p.outline(body)
    p.fill(p.rr(cx - 0.11, ly0 + 0.09, cx + 0.11, ly0 + 0.13, 0.02), _dark(k.p1, 0.55))
    p.fill(p.rr(cx - 0.07, ly0 + 0.16, cx + 0.07, ly0 + 0.19, 0.015), _lite(k.p1, 0.5))
    gx = cx - bw + 0.055
    p.gloss([(gx, bt + 0.02), (gx, ly0 - 0.035)], 0.03)
    p.gloss([(gx, ly1 + 0.035), (gx, 0.87)], 0.03)
    cap = p.rr(cx - nw - 0.014, 0.005, cx + nw + 0.014, 0.125, 0.025)
    p.shape(cap, k.p2 if _dist(k.p2, k.base) > 80 else _DARK, shade=0.2)
    for i in range(1, 4):
        x = cx - nw - 0.014 + (2 * nw + 0.028) * i / 4
        p.stroke([(x, 0.03), (x, 0.1)], _dark(k.p2, 0.35), 0.008)


def _perfume(p: _Pen, k: _Ink, r: random.Random) -> None:
    cx = p.a / 2
    glass = _lite(k.base, 0.6)
    body = p.rr(0.02, 0.36, p.a - 0.02, 0.99, 0.13 + r.uniform(-0.03, 0.03))
    p.shape(body, glass, shade=0.1)
    level = 0.55 + r.uniform(-0.05, 0.05)
    with p.clip(body):
        liq = [(0, level)]
        liq += [(p.a * i / 10, level + 0.012 * math.sin(i * 1.7)) for i in range(11)]
        liq += [(p.a, 1.0), (0, 1.0)]
        p.shape(liq, k.base, shade=0.18)
    inner = p.rr(0.09, 0.43, p.a - 0.09, 0.92, 0.08)
    p.stroke(inner, _lite(k.base, 0.82), 0.012, closed=True)
    p.outline(body)
    lab = p.rr(cx - 0.2, 0.6, cx + 0.2, 0.8, 0.03)
    p.shape(lab, _CREAM, shade=0.0)
    p.fill(p.rr(cx - 0.14, 0.645, cx + 0.14, 0.675, 0.01), k.p1)
    p.fill(p.rr(cx - 0.1, 0.71, cx + 0.1, 0.73, 0.01), _dark(_CREAM, 0.4))
    p.fill(p.rr(cx - 0.07, 0.75, cx + 0.07, 0.765, 0.01), _dark(_CREAM, 0.3))
    p.gloss([(0.085, 0.47), (0.085, 0.86)], 0.035, _WHITE)
    p.gloss([(0.13, 0.42), (0.2, 0.42)], 0.025, _WHITE)
    p.shape(p.rr(cx - 0.09, 0.26, cx + 0.09, 0.38, 0.02), _GOLD, shade=0.25)
    p.stroke([(cx - 0.09, 0.32), (cx + 0.09, 0.32)], _dark(_GOLD, 0.35), 0.012)
    cw = 0.17 + r.uniform(-0.02, 0.03)
    cap = [
        (cx - cw * 0.6, 0.005),
        (cx + cw * 0.6, 0.005),
        (cx + cw, 0.09),
        (cx + cw * 0.8, 0.27),
        (cx - cw * 0.8, 0.27),
        (cx - cw, 0.09),
    ]
    p.shape(cap, k.p1, shade=0.0)
    facet = [(cx - cw * 0.35, 0.04), (cx + cw * 0.35, 0.04), (cx + cw * 0.5, 0.1), (cx, 0.24)]
    p.fill([*facet, (cx - cw * 0.5, 0.1)], _lite(k.p1, 0.35))
    p.fill(
        [(cx + cw * 0.5, 0.1), (cx + cw, 0.09), (cx + cw * 0.8, 0.27), (cx, 0.24)], _dark(k.p1, 0.2)
    )
    p.outline(cap)


def _phone(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    body = p.rr(0.0, 0.0, a, 1.0, 0.085)
    p.shape(body, k.base, shade=0.06)
    scr = p.rr(0.03, 0.032, a - 0.03, 0.968, 0.06)
    p.fill(scr, _SCREEN)
    with p.clip(scr):
        p.fill(p.ell(a * 0.85, 0.25, 0.28), _mix(_SCREEN, k.p1, 0.35))
        p.fill(p.ell(a * 0.1, 0.7, 0.3), _mix(_SCREEN, k.p2, 0.3))
        p.fill([(0, 0.85), (a, 0.85), (a, 1), (0, 1)], _mix(_SCREEN, _WHITE, 0.14))
    cols = [k.p1, k.p2, k.p3, k.light, _lite(k.p1, 0.4), _GREEN]
    iw = (a - 0.06 - 0.05 * 5) / 4
    for row in range(5):
        for col in range(4):
            if row == 4 and col >= 4 - r.randint(0, 2):
                continue
            x = 0.055 + col * (iw + 0.05)
            y = 0.13 + row * 0.13
            p.fill(
                p.rr(x, y, x + iw, y + iw, iw * 0.28), cols[(row * 4 + col + r.randint(0, 5)) % 6]
            )
    for col in range(4):
        x = 0.055 + col * (iw + 0.05)
        p.fill(p.rr(x, 0.875, x + iw, 0.875 + iw, iw * 0.28), cols[(col + 2) % 6])
    p.fill(p.rr(a / 2 - 0.065, 0.05, a / 2 + 0.065, 0.08, 0.015), _BLACK)
    p.fill(p.rr(a / 2 - 0.1, 0.949, a / 2 + 0.1, 0.956, 0.004), _lite(_SCREEN, 0.6))
    p.gloss([(0.02, 0.12), (0.02, 0.4)], 0.012)
    p.outline(body)


def _laptop(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    lid = p.rr(0.17, 0.02, a - 0.17, 0.78, 0.045)
    p.shape(lid, k.base, shade=0.05)
    disp = p.rr(0.21, 0.065, a - 0.21, 0.735, 0.015)
    p.fill(disp, _SCREEN)
    with p.clip(disp):
        p.fill([(0.2, 0.065), (a, 0.065), (a, 0.12), (0.2, 0.12)], _mix(_SCREEN, k.p1, 0.6))
        split = 0.66 + r.uniform(-0.05, 0.05)
        p.fill(p.rr(0.27, 0.17, split, 0.56, 0.02), k.p2)
        p.fill(p.ell(0.27 + (split - 0.27) * 0.7, 0.27, 0.05), _lite(k.p2, 0.6))
        p.fill(
            [(0.27, 0.56), (0.38, 0.4), (0.47, 0.5), (0.55, 0.36), (split, 0.56)], _dark(k.p2, 0.3)
        )
        for i in range(5):
            y = 0.2 + i * 0.06
            x1 = a - 0.27 - (0.12 if i % 2 else 0.02) - r.uniform(0, 0.06)
            p.fill(p.rr(split + 0.06, y, x1, y + 0.025, 0.01), _mix(_SCREEN, _WHITE, 0.55))
        p.fill(p.rr(split + 0.06, 0.56, split + 0.3, 0.63, 0.02), k.p1)
    p.fill(p.ell(a / 2, 0.043, 0.01), _DARK)
    base_col = _mix(k.base, _METAL, 0.55)
    base = [(0.11, 0.78), (a - 0.11, 0.78), (a, 0.92), (0.0, 0.92)]
    p.shape(base, base_col, shade=0.0)
    kb = [(0.2, 0.795), (a - 0.2, 0.795), (a - 0.13, 0.875), (0.13, 0.875)]
    p.fill(kb, _dark(base_col, 0.4))
    for i in range(1, 3):
        t = i / 3
        y = 0.795 + 0.08 * t
        p.stroke([(0.2 - 0.07 * t, y), (a - 0.2 + 0.07 * t, y)], _dark(base_col, 0.1), 0.006)
    for i in range(1, 14):
        u = i / 14
        p.stroke(
            [(0.2 + (a - 0.4) * u, 0.795), (0.13 + (a - 0.26) * u, 0.875)],
            _dark(base_col, 0.1),
            0.006,
        )
    p.outline(base)
    lip = p.rr(0.0, 0.915, a, 0.975, 0.03)
    p.shape(lip, _dark(base_col, 0.12), shade=0.0)
    p.fill(p.rr(a / 2 - 0.12, 0.915, a / 2 + 0.12, 0.94, 0.01), _dark(base_col, 0.35))
    p.gloss([(0.04, 0.935), (a * 0.45, 0.935)], 0.012, _lite(base_col, 0.6))


def _headphones(p: _Pen, k: _Ink, r: random.Random) -> None:
    cy = 0.6
    band = _band(0.5, cy, (0.43, 0.58), (0.355, 0.5), 180, 360, 48)
    p.shape(band, k.base, shade=0.1)
    pad = _band(0.5, cy, (0.355, 0.5), (0.325, 0.46), 205, 335, 32)
    p.shape(pad, _DARK, shade=0.0)
    for side in (-1, 1):
        x = 0.5 + side * 0.39
        p.shape(p.rr(x - 0.04, cy - 0.02, x + 0.04, cy + 0.12, 0.015), _METAL, shade=0.0)
    accent = k.p1 if r.random() < 0.6 else k.p2
    for side in (-1, 1):
        x = 0.5 + side * 0.36
        cup = p.ell(x, 0.77, 0.13, 0.2)
        p.shape(cup, k.base, shade=0.2)
        p.shape(p.ell(x - side * 0.02, 0.77, 0.07, 0.12), accent, shade=0.0)
        p.fill(p.ell(x - side * 0.02, 0.77, 0.035, 0.06), _lite(accent, 0.4))
        cush = p.ell(x - side * 0.11, 0.77, 0.055, 0.18)
        p.shape(cush, _DARK, shade=0.0)
        p.gloss(p.ell(x, 0.77, 0.1, 0.16, a0=200, a1=250), 0.018)
    p.gloss(_band(0.5, cy, (0.4, 0.54), (0.4, 0.54), 205, 240, 10)[:11], 0.02)


def _watch(p: _Pen, k: _Ink, r: random.Random) -> None:
    cx = p.a / 2
    strap = k.base
    top = [(cx - 0.12, 0.0), (cx + 0.12, 0.0), (cx + 0.15, 0.3), (cx - 0.15, 0.3)]
    bot = [(cx - 0.15, 0.7), (cx + 0.15, 0.7), (cx + 0.12, 1.0), (cx - 0.12, 1.0)]
    p.shape(top, strap, shade=0.12)
    p.shape(bot, strap, shade=0.12)
    for y in (0.8, 0.87, 0.94):
        p.fill(p.ell(cx, y, 0.018), _dark(strap, 0.55))
    p.stroke([(cx - 0.09, 0.03), (cx - 0.1, 0.26)], _lite(strap, 0.35), 0.01)
    p.stroke([(cx - 0.1, 0.74), (cx - 0.09, 0.97)], _lite(strap, 0.35), 0.01)
    p.shape(p.rr(cx + 0.25, 0.45, cx + 0.3, 0.55, 0.012), _METAL, shade=0.0)
    metal = _mix(_METAL, k.p1, 0.25) if r.random() < 0.5 else _METAL
    p.circle(cx, 0.5, 0.27, metal, shade=0.12)
    p.fill(p.ell(cx, 0.5, 0.235), _dark(metal, 0.55))
    face = p.ell(cx, 0.5, 0.215)
    p.fill(face, _PAPER)
    with p.clip(face):
        p.fill(p.ell(cx + 0.05, 0.56, 0.22), _dark(_PAPER, 0.06))
    for i in range(12):
        t = math.radians(i * 30 - 90)
        r0 = 0.155 if i % 3 == 0 else 0.175
        p.stroke(
            [
                (cx + r0 * math.cos(t), 0.5 + r0 * math.sin(t)),
                (cx + 0.195 * math.cos(t), 0.5 + 0.195 * math.sin(t)),
            ],
            _DARK,
            0.022 if i % 3 == 0 else 0.01,
        )
    hh = math.radians(r.uniform(0, 360))
    mm = math.radians(r.uniform(0, 360))
    p.stroke([(cx, 0.5), (cx + 0.1 * math.cos(hh), 0.5 + 0.1 * math.sin(hh))], _DARK, 0.025)
    p.stroke([(cx, 0.5), (cx + 0.15 * math.cos(mm), 0.5 + 0.15 * math.sin(mm))], _DARK, 0.016)
    ss = mm + 2.1
    p.stroke([(cx, 0.5), (cx + 0.17 * math.cos(ss), 0.5 + 0.17 * math.sin(ss))], _RED, 0.007)
    p.fill(p.ell(cx, 0.5, 0.022), _DARK)
    p.gloss(p.ell(cx, 0.5, 0.245, a0=200, a1=250), 0.014, _WHITE)


def _sneaker(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    sole_col = (246, 246, 240)
    upper = [(0.07, 0.8)]
    upper += _bez3((0.07, 0.8), (0.02, 0.5), (0.06, 0.26), (0.12, 0.22))[1:]
    upper += _bez3((0.12, 0.22), (0.22, 0.25), (0.3, 0.37), (0.44, 0.31))[1:]
    upper += _bez((0.44, 0.31), (0.47, 0.15), (0.58, 0.12))[1:]
    upper += _bez((0.58, 0.12), (0.67, 0.14), (0.66, 0.24))[1:]
    upper += _bez3((0.66, 0.24), (0.9, 0.36), (1.2, 0.42), (1.36, 0.5))[1:]
    upper += _bez3((1.36, 0.5), (1.58, 0.58), (1.58, 0.72), (1.53, 0.8))[1:]
    p.shape(upper, k.base, shade=0.1)
    with p.clip(upper):
        p.shape(p.ell(1.5, 0.8, 0.26, 0.2), _lite(k.base, 0.3), shade=0.0)
        heel = [(0.0, 0.45), (0.2, 0.5), (0.26, 0.85), (0.0, 0.85)]
        p.shape(heel, k.p1, shade=0.0)
        sw = _bez3((0.32, 0.72), (0.6, 0.7), (0.95, 0.62), (1.22, 0.44))
        sw += _bez3((1.22, 0.44), (1.0, 0.58), (0.62, 0.62), (0.32, 0.72))[1:]
        p.shape(sw, k.p2 if r.random() < 0.6 else _WHITE, shade=0.0)
    p.outline(upper)
    p.stroke(_bez((0.13, 0.24), (0.24, 0.28), (0.42, 0.33)), _DARK, 0.03)
    for i in range(4):
        t = 0.12 + i * 0.22
        x, y = _lerp((0.66, 0.27), (0.98, 0.42), t)
        p.stroke([(x - 0.05, y - 0.06), (x + 0.05, y + 0.02)], _WHITE, 0.028)
        p.fill(p.ell(x - 0.055, y - 0.065, 0.012), _DARK)
    sole = p.rr(0.02, 0.76, a - 0.02, 0.93, 0.07)
    p.shape(sole, sole_col, shade=0.08)
    p.stroke([(0.08, 0.85), (a - 0.08, 0.85)], k.p1, 0.018)
    tread = p.rr(0.04, 0.9, a - 0.04, 0.965, 0.03)
    p.shape(tread, (88, 88, 96), shade=0.0)
    p.gloss([(0.9, 0.4), (1.2, 0.46)], 0.02)


def _handbag(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    hw = 0.27 + r.uniform(-0.03, 0.03)
    handle = _band(cx, 0.44, (hw + 0.065, 0.42), (hw, 0.355), 180, 360, 40)
    p.shape(handle, k.deep, shade=0.12)
    body = [(0.15, 0.4), (a - 0.15, 0.4)]
    body += _bez((a - 0.15, 0.4), (a, 0.82), (a - 0.07, 0.98))[1:]
    body += _bez((0.07, 0.98), (0.0, 0.82), (0.15, 0.4))
    p.shape(body, k.base, shade=0.12)
    flap = [(0.13, 0.4), (a - 0.13, 0.4), (a - 0.08, 0.58)]
    flap += _bez((a - 0.08, 0.58), (cx, 0.78), (0.08, 0.58))
    with p.clip(body):
        p.shape(flap, k.shade, shade=0.0)
    p.stroke(_bez((0.13, 0.55), (cx, 0.73), (a - 0.13, 0.55)), _lite(k.base, 0.5), 0.008)
    p.outline(body)
    for x in (cx - hw - 0.03, cx + hw + 0.03):
        p.shape(p.rr(x - 0.035, 0.36, x + 0.035, 0.45, 0.015), _GOLD, shade=0.0)
    p.circle(cx, 0.64, 0.05, _GOLD, shade=0.2)
    p.fill(p.ell(cx, 0.64, 0.02), _dark(_GOLD, 0.35))
    p.gloss([(0.18, 0.8), (0.15, 0.92)], 0.025)


def _lipstick(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    tube_col = k.p1 if r.random() < 0.5 else _DARK
    tube = p.rr(0.01, 0.56, a - 0.01, 0.995, 0.03)
    p.shape(tube, tube_col, shade=0.22)
    p.gloss([(0.05, 0.62), (0.05, 0.95)], 0.02, _lite(tube_col, 0.5))
    p.shape(p.rr(0.015, 0.5, a - 0.015, 0.585, 0.02), _GOLD, shade=0.25)
    p.shape(p.rr(0.05, 0.35, a - 0.05, 0.51, 0.01), _lite(_GOLD, 0.2), shade=0.25)
    top_l = 0.14 + r.uniform(-0.02, 0.02)
    bullet = [(0.075, 0.37), (0.075, top_l)]
    bullet += _bez((0.075, top_l), (0.08, 0.04), (a - 0.09, 0.0))[1:]
    bullet += _bez((a - 0.09, 0.0), (a - 0.075, 0.0), (a - 0.075, 0.06))[1:]
    bullet += [(a - 0.075, 0.37)]
    p.shape(bullet, k.base, shade=0.25)
    p.gloss([(0.11, top_l + 0.03), (0.11, 0.33)], 0.022)
    p.stroke([(cx - 0.03, 0.1), (a - 0.1, 0.04)], k.light, 0.012)


def _camera(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    hump = [(0.42, 0.24), (0.5, 0.04), (0.9, 0.04), (0.98, 0.24)]
    p.shape(hump, k.deep, shade=0.0)
    p.fill(p.rr(0.6, 0.09, 0.8, 0.17, 0.02), _SCREEN)
    p.shape(p.rr(0.1, 0.1, 0.3, 0.24, 0.02), k.p1, shade=0.0)
    body = p.rr(0.0, 0.2, a, 0.96, 0.09)
    p.shape(body, k.base, shade=0.05)
    with p.clip(body):
        p.fill([(0, 0.37), (a, 0.37), (a, 0.83), (0, 0.83)], _mix(k.base, _DARK, 0.7))
        for i in range(14):
            x = 0.02 + i * 0.1
            p.stroke([(x, 0.37), (x + 0.04, 0.83)], _mix(k.base, _DARK, 0.8), 0.006)
    p.outline(body)
    p.stroke([(0.06, 0.26), (0.3, 0.26)], k.light, 0.02)
    p.shape(p.rr(a - 0.3, 0.26, a - 0.09, 0.33, 0.015), _PAPER, shade=0.0)
    cx, cy = 0.69 + r.uniform(-0.03, 0.03), 0.58
    p.circle(cx, cy, 0.34, _METAL, shade=0.08)
    for i in range(24):
        t = math.radians(i * 15)
        p.stroke(
            [
                (cx + 0.3 * math.cos(t), cy + 0.3 * math.sin(t)),
                (cx + 0.335 * math.cos(t), cy + 0.335 * math.sin(t)),
            ],
            _dark(_METAL, 0.25),
            0.008,
        )
    p.fill(p.ell(cx, cy, 0.27), _DARK)
    glass = _mix((40, 70, 130), k.p1, 0.25)
    p.shape(p.ell(cx, cy, 0.2), glass, shade=0.25)
    p.fill(p.ell(cx + 0.02, cy + 0.02, 0.1), _dark(glass, 0.5))
    p.gloss(p.ell(cx, cy, 0.15, a0=195, a1=255), 0.03, _WHITE)
    p.fill(p.ell(cx + 0.07, cy + 0.08, 0.025), _lite(glass, 0.6))
    p.fill(p.ell(0.2, 0.3, 0.022), _RED)


def _lamp(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    stem = p.rr(cx - 0.03, 0.46, cx + 0.03, 0.88, 0.01)
    brass = _GOLD
    p.shape(stem, brass, shade=0.3)
    p.shape(p.ell(cx, 0.68, 0.055, 0.035), brass, shade=0.2)
    base = _bez3((0.12, 0.97), (0.15, 0.84), (a - 0.15, 0.84), (a - 0.12, 0.97))
    base += [(a - 0.08, 0.99), (0.08, 0.99)]
    p.shape(base, k.deep, shade=0.1)
    p.gloss([(cx - 0.12, 0.93), (cx - 0.04, 0.885)], 0.015)
    tw = 0.18 + r.uniform(-0.02, 0.02)
    shade_pts = [(cx - tw, 0.02), (cx + tw, 0.02), (a - 0.01, 0.46)]
    shade_pts += _bez((a - 0.01, 0.46), (cx, 0.53), (0.01, 0.46))[1:]
    p.fill(p.ell(cx, 0.475, 0.3, 0.035), _lite(_YELLOW, 0.5))
    p.shape(shade_pts, k.base, shade=0.12)
    with p.clip(shade_pts):
        p.fill([(0, 0.06), (a, 0.06), (a, 0.09), (0, 0.09)], k.p1)
        p.fill([(0, 0.4), (a, 0.4), (a, 0.44), (0, 0.44)], k.p1)
        for i in range(5):
            x0 = cx - tw + (2 * tw) * (i + 0.5) / 5
            x1 = 0.01 + (a - 0.02) * (i + 0.5) / 5
            p.stroke([(x0, 0.1), (x1, 0.39)], _dark(k.base, 0.1), 0.008)
    p.outline(shade_pts)
    p.gloss([(cx - tw + 0.03, 0.12), (0.09, 0.36)], 0.02)
    p.stroke([(cx + 0.17, 0.49), (cx + 0.17, 0.6)], _DARK, 0.008)
    p.circle(cx + 0.17, 0.615, 0.017, brass, shade=0.0)


def _chair(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    wood = k.base
    for x in (0.17, a - 0.22):
        p.shape(p.rr(x, 0.55, x + 0.05, 0.93, 0.01), k.deep, shade=0.0)
    for x in (0.1, a - 0.18):
        p.shape(p.rr(x, 0.02, x + 0.08, 0.6, 0.02), wood, shade=0.25)
    n = r.choice([2, 3, 3])
    for i in range(n):
        x = 0.18 + (a - 0.36) * (i + 0.5) / n
        p.shape(p.rr(x - 0.03, 0.12, x + 0.03, 0.44, 0.008), wood, shade=0.25)
    p.shape(p.rr(0.07, 0.01, a - 0.07, 0.15, 0.035), wood, shade=0.15)
    p.shape(p.rr(0.12, 0.4, a - 0.12, 0.46, 0.01), wood, shade=0.2)
    seat = [(0.1, 0.49), (a - 0.1, 0.49), (a - 0.02, 0.62), (0.02, 0.62)]
    p.shape(seat, k.p1 if r.random() < 0.5 else _lite(wood, 0.2), shade=0.0)
    p.shape(p.rr(0.02, 0.615, a - 0.02, 0.69, 0.015), k.shade, shade=0.0)
    for x in (0.04, a - 0.11):
        p.shape(p.rr(x, 0.68, x + 0.07, 0.995, 0.015), wood, shade=0.25)
    p.shape(p.rr(0.1, 0.84, a - 0.1, 0.875, 0.008), k.deep, shade=0.0)
    p.gloss([(0.125, 0.06), (0.125, 0.55)], 0.015)


# =========================================================================== food


def _cup(p: _Pen, k: _Ink, r: random.Random) -> None:
    steam = _mix(_WHITE, (200, 205, 215), 0.3)
    for i, x in enumerate((0.3, 0.45, 0.6)):
        ph = r.uniform(0, math.tau)
        top = 0.03 + 0.05 * (i % 2)
        pts = [
            (x + 0.035 * math.sin(ph + t * 7), 0.3 - (0.3 - top) * t)
            for t in [j / 14 for j in range(15)]
        ]
        p.tube(pts, steam, 0.035)
    p.shape(p.ell(0.46, 0.935, 0.45, 0.06), _lite(k.p1, 0.3), shade=0.1)
    p.fill(p.ell(0.46, 0.925, 0.22, 0.03), _dark(_lite(k.p1, 0.3), 0.12))
    hx, hy = 0.77, 0.6
    ring = p.ell(hx, hy, 0.17, 0.17)
    p.shape(ring, k.base, shade=0.12)
    p.hole(p.ell(hx, hy, 0.09, 0.095))
    body = [(0.13, 0.36), (0.79, 0.36)]
    body += p.ell(0.64, 0.83, 0.12, a0=0, a1=90)
    body += p.ell(0.28, 0.83, 0.12, a0=90, a1=180)
    body = [(0.13, 0.36), (0.79, 0.36), (0.76, 0.83), *body[2:], (0.16, 0.83)]
    p.shape(body, k.base, shade=0.14)
    with p.clip(body):
        p.fill([(0, 0.56), (1, 0.56), (1, 0.64), (0, 0.64)], k.p1)
        p.fill([(0, 0.67), (1, 0.67), (1, 0.69), (0, 0.69)], k.p2)
    p.outline(body)
    p.shape(p.ell(0.46, 0.36, 0.33, 0.065), k.light, shade=0.0)
    p.fill(p.ell(0.46, 0.365, 0.29, 0.045), (112, 70, 42))
    p.fill(p.ell(0.4, 0.36, 0.09, 0.018), (160, 112, 74))
    p.gloss([(0.21, 0.45), (0.23, 0.8)], 0.03)


def _burger(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    bun = k.tint(_TAN, 0.3)
    p.shape(p.rr(0.07, 0.76, a - 0.07, 0.97, 0.09), bun, shade=0.15)
    p.shape(p.rr(0.06, 0.7, a - 0.06, 0.79, 0.04), _RED, shade=0.15)
    patty = p.rr(0.03, 0.55, a - 0.03, 0.75, 0.09)
    p.shape(patty, (112, 64, 40), shade=0.18)
    for i in range(6):
        x = 0.2 + i * 0.18
        p.stroke([(x, 0.6), (x + 0.1, 0.69)], (86, 46, 28), 0.014)
    cheese = [(0.02, 0.5), (a - 0.02, 0.5), (a - 0.02, 0.57)]
    for i in range(5, 0, -1):
        x = 0.02 + (a - 0.04) * i / 5
        cheese += [(x - 0.05, 0.57), (x - 0.1, 0.65 + 0.03 * (i % 2)), (x - 0.15, 0.57)]
    cheese += [(0.02, 0.57)]
    p.shape(cheese, _YELLOW, shade=0.0)
    lettuce = [(0.03, 0.46), (a - 0.03, 0.46)]
    for i in range(13, -1, -1):
        x = 0.0 + (a - 0.0) * i / 13
        lettuce.append((x, 0.54 + (0.025 if i % 2 else -0.01)))
    p.shape(lettuce, _GREEN, shade=0.0)
    dome = p.ell(a / 2, 0.48, a / 2 - 0.05, 0.44, a0=180, a1=360)
    dome += [(a - 0.05, 0.5), (0.05, 0.5)]
    p.shape(dome, bun, shade=0.14)
    for _ in range(8):
        t = math.radians(r.uniform(200, 340))
        rad = r.uniform(0.3, 0.85)
        x = a / 2 + (a / 2 - 0.15) * rad * math.cos(t)
        y = 0.47 + 0.34 * rad * math.sin(t)
        p.shape(p.ell(x, y, 0.03, 0.017, rot=r.uniform(-40, 40)), _CREAM, shade=0.0, line=False)
    p.gloss(p.ell(a / 2, 0.48, a / 2 - 0.15, 0.35, a0=205, a1=240), 0.03)


def _pizza(p: _Pen, k: _Ink, r: random.Random) -> None:
    tip = (0.5, 0.99)
    crust = k.tint(_TAN, 0.25)
    top = _bez((0.02, 0.15), (0.5, -0.07), (0.98, 0.15))
    slice_pts = [*top, tip]
    p.shape(slice_pts, crust, shade=0.06)
    ctop = _bez((0.1, 0.25), (0.5, 0.07), (0.9, 0.25))
    cheese = [*ctop, (0.52, 0.93), (0.48, 0.93)]
    p.shape(cheese, _YELLOW, shade=0.1, line=False)
    p.outline(cheese, p.lw * 0.7)
    for x, y in ((0.83, 0.34), (0.22, 0.42)):
        p.shape(p.rr(x - 0.03, y - 0.06, x + 0.03, y + 0.08, 0.03), _YELLOW, shade=0.0)
    pep = _mix(_RED, k.base, 0.25)
    spots = [(0.32, 0.3), (0.66, 0.3), (0.5, 0.5), (0.38, 0.6), (0.52, 0.74)]
    for x, y in spots:
        x += r.uniform(-0.025, 0.025)
        y += r.uniform(-0.02, 0.02)
        p.shape(p.ell(x, y, 0.065), pep, shade=0.18)
        p.fill(p.ell(x - 0.02, y - 0.02, 0.012), _lite(pep, 0.4))
    for x, y in ((0.5, 0.25), (0.63, 0.56), (0.3, 0.45)):
        p.shape(_vesica((x, y), (x + 0.06, y - 0.04), 0.4), _LEAFGREEN, shade=0.0)
    p.gloss(_bez((0.12, 0.11), (0.3, 0.04), (0.45, 0.03)), 0.02)


def _cake(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    p.shape(p.ell(cx, 0.925, cx - 0.01, 0.065), (240, 240, 246), shade=0.1)
    rx, ty, by = cx - 0.08, 0.48, 0.88
    body = [(cx - rx, ty), *p.ell(cx, by, rx, 0.06, a0=180, a1=0), (cx + rx, ty)]
    p.shape(body, k.base, shade=0.1)
    with p.clip(body):
        p.fill([(0, 0.67), (a, 0.67), (a, 0.72), (0, 0.72)], k.p1)
        for i in range(7):
            x = cx - rx + 0.06 + i * (2 * rx - 0.12) / 6
            p.fill(p.ell(x, 0.8, 0.022), _lite(k.base, 0.55))
    p.outline(body)
    icing_col = _lite(k.p2, 0.55) if _dist(_lite(k.p2, 0.55), k.base) > 60 else _PAPER
    icing = p.ell(cx, ty, rx + 0.01, 0.075, a0=180, a1=360)
    drips = r.randint(6, 8)
    for i in range(41):
        t = i / 40
        ang = math.radians(t * 180)
        x = cx + (rx + 0.01) * math.cos(ang)
        y = ty + 0.075 * math.sin(ang)
        drop = 0.035 + 0.06 * max(0.0, math.sin(t * math.pi * drips)) ** 2
        icing.append((x, y + drop))
    p.shape(icing, icing_col, shade=0.0)
    p.gloss(p.ell(cx, ty, rx - 0.08, 0.04, a0=200, a1=250), 0.018, _WHITE)
    n = r.choice([3, 3, 4])
    for i in range(n):
        x = cx - 0.22 + 0.44 * i / (n - 1)
        y0 = ty - 0.02 + 0.02 * (i % 2)
        c = p.rr(x - 0.025, y0 - 0.25, x + 0.025, y0, 0.008)
        p.shape(c, k.p3, shade=0.2)
        with p.clip(c):
            for j in range(4):
                yy = y0 - 0.24 + j * 0.07
                p.fill(
                    [
                        (x - 0.05, yy),
                        (x + 0.05, yy + 0.03),
                        (x + 0.05, yy + 0.05),
                        (x - 0.05, yy + 0.02),
                    ],
                    _WHITE,
                )
        p.outline(c)
        flame = _vesica((x, y0 - 0.265), (x + 0.005, y0 - 0.41), 0.28)
        p.shape(flame, _ORANGE, shade=0.0)
        p.fill(_vesica((x, y0 - 0.28), (x + 0.004, y0 - 0.35), 0.25), _YELLOW)


def _ice_cream(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    cone = [(0.04, 0.52), (a - 0.04, 0.52), (cx, 0.995)]
    cc = _TAN
    p.shape(cone, cc, shade=0.12)
    with p.clip(cone):
        for i in range(-6, 7):
            x = cx + i * 0.09
            p.stroke([(x, 0.5), (x + 0.4, 1.0)], _dark(cc, 0.3), 0.012)
            p.stroke([(x, 0.5), (x - 0.4, 1.0)], _dark(cc, 0.3), 0.012)
    p.outline(cone)
    low = p.ell(cx, 0.46, cx - 0.015, 0.16, a0=180, a1=360)
    for i in range(9):
        t = i / 8
        low.append((a - 0.015 - (a - 0.03) * t, 0.5 + (0.045 if i % 2 else 0.0)))
    scoop2 = k.p1
    p.shape(low, scoop2, shade=0.12)
    top = p.ell(cx, 0.29, 0.2, 0.17)
    p.shape(top, k.base, shade=0.15)
    p.gloss(p.ell(cx, 0.29, 0.14, 0.11, a0=200, a1=250), 0.025)
    p.gloss(p.ell(cx, 0.46, cx - 0.08, 0.1, a0=200, a1=230), 0.025, _lite(scoop2, 0.6))
    for _ in range(7):
        t = math.radians(r.uniform(190, 350))
        rad = r.uniform(0.35, 0.8)
        x = cx + 0.17 * rad * math.cos(t)
        y = 0.3 + 0.14 * rad * math.sin(t)
        p.fill(
            p.rr(x - 0.022, y - 0.007, x + 0.022, y + 0.007, 0.007), r.choice([k.p2, k.p3, _WHITE])
        )
    p.stroke(_bez((cx + 0.03, 0.09), (cx + 0.06, 0.02), (cx + 0.12, 0.005)), _DARKWOOD, 0.012)
    p.circle(cx + 0.02, 0.1, 0.055, _RED, shade=0.2)
    p.fill(p.ell(cx + 0.0, 0.085, 0.014), _lite(_RED, 0.6))


def _fruit(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    body = _bez3((cx, 0.26), (cx + 0.15, 0.14), (a, 0.2), (a - 0.02, 0.55))
    body += _bez3((a - 0.02, 0.55), (a - 0.03, 0.86), (cx + 0.24, 1.0), (cx + 0.11, 0.975))[1:]
    body += _bez((cx + 0.11, 0.975), (cx, 0.94), (cx - 0.11, 0.975))[1:]
    body += _bez3((cx - 0.11, 0.975), (cx - 0.24, 1.0), (0.03, 0.86), (0.02, 0.55))[1:]
    body += _bez3((0.02, 0.55), (0.0, 0.2), (cx - 0.15, 0.14), (cx, 0.26))[1:-1]
    p.shape(body, k.base, shade=0.16)
    p.tube(_bez((cx, 0.28), (cx - 0.01, 0.14), (cx + 0.05, 0.04)), _DARKWOOD, 0.035)
    lean = r.uniform(-0.03, 0.03)
    leaf = _vesica((cx + 0.03, 0.15), (cx + 0.3, 0.04 + lean), 0.3)
    p.shape(leaf, _GREEN, shade=0.1)
    p.stroke([(cx + 0.05, 0.145), (cx + 0.26, 0.055 + lean)], _dark(_GREEN, 0.3), 0.01)
    p.gloss(p.ell(cx - 0.02, 0.6, 0.32, 0.3, a0=195, a1=240), 0.04)
    p.fill(p.ell(cx - 0.33, 0.35, 0.025), k.gloss)


def _bowl(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx, ry = a / 2, 0.42
    p.shape(p.rr(cx - 0.24, 0.86, cx + 0.24, 0.97, 0.02), k.deep, shade=0.0)
    rim = p.ell(cx, ry, cx - 0.03, 0.1)
    p.shape(rim, k.light, shade=0.0)
    broth = p.ell(cx, ry + 0.005, cx - 0.09, 0.072)
    p.fill(broth, (226, 158, 80))
    with p.clip(broth):
        for i in range(6):
            x0 = 0.2 + i * 0.12
            pts = [
                (x0 + 0.02 * math.sin(j * 1.3) + j * 0.018, ry - 0.07 + j * 0.02) for j in range(9)
            ]
            p.stroke(pts, (252, 232, 170), 0.018)
        p.fill(p.ell(cx - 0.22, ry + 0.01, 0.12, 0.055), _PAPER)
        p.fill(p.ell(cx - 0.22, ry + 0.01, 0.05, 0.03), _ORANGE)
        for _ in range(6):
            x = cx + r.uniform(0.0, 0.45)
            y = ry + r.uniform(-0.04, 0.04)
            p.fill(p.ell(x, y, 0.022, 0.014), _GREEN)
    nori = [(cx + 0.3, 0.18), (cx + 0.46, 0.2), (cx + 0.44, 0.43), (cx + 0.28, 0.43)]
    p.shape(nori, (38, 62, 44), shade=0.0)
    for dx in (0.0, 0.1):
        p.tube([(cx + 0.3 + dx, 0.02), (cx - 0.05 + dx, 0.45)], _WOOD, 0.03)
    body = p.ell(cx, ry, cx - 0.03, 0.5, a0=0, a1=180) + p.ell(cx, ry, cx - 0.03, 0.1, a0=180, a1=0)
    p.shape(body, k.base, shade=0.12)
    with p.clip(body):
        pts = [(0.0 + j * 0.05, 0.66 + 0.03 * math.sin(j * 1.4)) for j in range(int(a / 0.05) + 2)]
        p.stroke(pts, k.p1, 0.03)
        for j in range(6):
            p.fill(p.ell(0.2 + j * 0.2, 0.75 + 0.02 * (j % 2), 0.02), k.p2)
    p.outline(body)
    p.gloss(p.ell(cx, ry, cx - 0.12, 0.4, a0=150, a1=125), 0.03)


def _donut(p: _Pen, k: _Ink, r: random.Random) -> None:
    dough = _TAN
    p.circle(0.5, 0.5, 0.48, dough, shade=0.1)
    waves = r.randint(6, 9)
    ph = r.uniform(0, math.tau)
    ice = []
    for i in range(90):
        t = math.tau * i / 90
        rad = 0.4 + 0.035 * math.sin(waves * t + ph) + 0.02 * math.sin(3 * t)
        ice.append((0.5 + rad * math.cos(t), 0.5 + rad * math.sin(t)))
    p.shape(ice, k.base, shade=0.08)
    p.fill(p.ell(0.5, 0.5, 0.2), _dark(dough, 0.12))
    cols = [k.p1, k.p2, k.p3, _WHITE]
    for i in range(22):
        t = math.tau * (i + r.uniform(-0.3, 0.3)) / 22
        rad = r.uniform(0.25, 0.34)
        x, y = 0.5 + rad * math.cos(t), 0.5 + rad * math.sin(t)
        sp = _rot(p.rr(x - 0.03, y - 0.009, x + 0.03, y + 0.009, 0.009), r.uniform(0, 180), (x, y))
        p.fill(sp, cols[i % 4])
    p.gloss(p.ell(0.5, 0.5, 0.34, a0=200, a1=240), 0.03)
    p.hole(p.ell(0.5, 0.5, 0.145))


def _bread(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    crust = k.tint((206, 136, 62), 0.25)
    loaf = _bez3((0.05, 0.8), (0.0, 0.22), (0.4, 0.12), (a / 2, 0.12))
    loaf += _bez3((a / 2, 0.12), (a - 0.4, 0.12), (a, 0.22), (a - 0.05, 0.8))[1:]
    loaf += p.ell(a - 0.14, 0.84, 0.1, 0.1, a0=0, a1=90)[1:]
    loaf += p.ell(0.14, 0.84, 0.1, 0.1, a0=90, a1=180)
    p.shape(loaf, crust, shade=0.12)
    crumb = (248, 222, 170)
    with p.clip(loaf):
        n = r.choice([3, 4, 4])
        for i in range(n):
            x = 0.3 + (a - 0.6) * i / (n - 1)
            slash = _vesica((x - 0.12, 0.47), (x + 0.1, 0.22), 0.18)
            p.fill(slash, crumb)
            p.stroke(slash, _dark(crust, 0.35), 0.01, closed=True)
        p.fill(p.rr(0, 0.86, a, 1.0), _dark(crust, 0.2))
    p.outline(loaf)
    for _ in range(14):
        x = r.uniform(0.15, a - 0.15)
        y = r.uniform(0.2, 0.35) + 0.25 * ((x - a / 2) / a) ** 2 * 2
        p.fill(p.ell(x, y, 0.012), _WHITE)
    p.gloss(_bez((0.12, 0.55), (0.16, 0.3), (0.4, 0.2)), 0.03)


# =========================================================================== events


def _balloon(p: _Pen, k: _Ink, r: random.Random) -> None:
    cx = p.a / 2
    sway = r.uniform(-0.04, 0.04)
    pts = [
        (cx + 0.025 * math.sin(t * 9) + sway * t, 0.76 + 0.235 * t)
        for t in [j / 16 for j in range(17)]
    ]
    p.tube(pts, (120, 120, 128), 0.012)
    p.shape([(cx - 0.04, 0.785), (cx + 0.04, 0.785), (cx, 0.72)], k.deep, shade=0.0)
    body = []
    for i in range(80):
        t = math.tau * i / 80
        s = math.sin(t)
        x = cx + (cx - 0.02) * math.cos(t) * (1 - 0.16 * max(0.0, s) ** 2)
        y = 0.385 + 0.37 * s
        body.append((x, y))
    p.shape(body, k.base, shade=0.16)
    p.shape(p.ell(cx - 0.12, 0.22, 0.045, 0.09, rot=25), k.gloss, shade=0.0, line=False)
    p.fill(p.ell(cx - 0.17, 0.36, 0.022), k.gloss)


def _gift(p: _Pen, k: _Ink, r: random.Random) -> None:
    rib = k.p1
    box = p.rr(0.08, 0.42, 0.92, 0.99, 0.02)
    p.shape(box, k.base, shade=0.1)
    with p.clip(box):
        p.fill([(0.43, 0), (0.57, 0), (0.57, 1), (0.43, 1)], rib)
        p.fill([(0.53, 0), (0.57, 0), (0.57, 1), (0.53, 1)], _dark(rib, 0.15))
        p.fill([(0.08, 0.42), (0.92, 0.42), (0.92, 0.48), (0.08, 0.48)], _dark(k.base, 0.3))
    p.outline(box)
    lid = p.rr(0.03, 0.28, 0.97, 0.44, 0.02)
    p.shape(lid, k.light if r.random() < 0.5 else k.base, shade=0.1)
    with p.clip(lid):
        p.fill([(0.43, 0), (0.57, 0), (0.57, 1), (0.43, 1)], rib)
    p.outline(lid)
    tilt = r.uniform(-8, 8)
    for side in (-1, 1):
        loop = _vesica((0.5, 0.27), (0.5 + side * 0.33, 0.07), 0.34, skew=0.2 * side)
        loop = _rot(loop, tilt, (0.5, 0.27))
        p.shape(loop, rib, shade=0.12)
        inner = _vesica((0.5 + side * 0.07, 0.24), (0.5 + side * 0.25, 0.12), 0.22)
        p.fill(_rot(inner, tilt, (0.5, 0.27)), _dark(rib, 0.35))
    for side in (-1, 1):
        tail = [(0.5, 0.27), (0.5 + side * 0.13, 0.38), (0.5 + side * 0.09, 0.4), (0.5, 0.3)]
        p.shape(tail, _dark(rib, 0.1), shade=0.0)
    p.circle(0.5, 0.26, 0.055, rib, shade=0.2)
    p.gloss([(0.13, 0.5), (0.13, 0.93)], 0.025)


def _trophy(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    cup_col = k.base
    for side in (-1, 1):
        hx = cx + side * 0.3
        band = _band(
            hx,
            0.21,
            (0.13, 0.15),
            (0.075, 0.095),
            90 - side * 90 - 100 * side,
            90 - side * 90 + 100 * side,
            24,
        )
        p.shape(band, cup_col, shade=0.15)
    w = 0.29 + r.uniform(-0.02, 0.01)
    cup = [(cx - w, 0.04), (cx + w, 0.04)]
    cup += _bez3((cx + w, 0.04), (cx + w, 0.4), (cx + 0.12, 0.52), (cx + 0.05, 0.55))[1:]
    cup += _bez3((cx - 0.05, 0.55), (cx - 0.12, 0.52), (cx - w, 0.4), (cx - w, 0.04))[:-1]
    p.shape(cup, cup_col, shade=0.18)
    p.shape(p.ell(cx, 0.045, w, 0.035), k.deep, shade=0.0)
    p.shape(_star(cx, 0.25, 0.09, 0.04), k.gloss, shade=0.0)
    p.gloss(_bez((cx - w + 0.06, 0.12), (cx - w + 0.06, 0.35), (cx - 0.1, 0.46)), 0.025)
    stem = [(cx - 0.045, 0.54), (cx + 0.045, 0.54), (cx + 0.08, 0.72), (cx - 0.08, 0.72)]
    p.shape(stem, k.shade, shade=0.2)
    p.shape(p.ell(cx, 0.62, 0.07, 0.03), cup_col, shade=0.2)
    p.shape(p.rr(cx - 0.17, 0.7, cx + 0.17, 0.77, 0.015), cup_col, shade=0.15)
    base = p.rr(cx - 0.25, 0.76, cx + 0.25, 0.995, 0.02)
    p.shape(base, (74, 52, 44), shade=0.1)
    p.shape(
        p.rr(cx - 0.14, 0.82, cx + 0.14, 0.94, 0.01), k.p1 if k.p1 != k.base else _GOLD, shade=0.0
    )
    p.stroke([(cx - 0.08, 0.88), (cx + 0.08, 0.88)], _dark(k.p1, 0.5), 0.012)


def _microphone(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    handle = [(cx - 0.13, 0.42), (cx + 0.13, 0.42), (cx + 0.07, 0.97), (cx - 0.07, 0.97)]
    p.shape(handle, k.base, shade=0.25)
    p.gloss([(cx - 0.08, 0.48), (cx - 0.045, 0.9)], 0.02)
    p.shape(p.rr(cx - 0.03, 0.56, cx + 0.03, 0.66, 0.01), k.p1, shade=0.0)
    p.shape(p.rr(cx - 0.08, 0.94, cx + 0.08, 0.995, 0.015), _DARK, shade=0.0)
    p.shape(p.rr(cx - 0.15, 0.36, cx + 0.15, 0.45, 0.02), _DARK, shade=0.0)
    grille = p.ell(cx, 0.2, 0.19 + r.uniform(-0.01, 0.005))
    p.shape(grille, _METAL, shade=0.2)
    with p.clip(grille):
        for i in range(-6, 7):
            x = cx + i * 0.045
            p.stroke([(x - 0.25, -0.05), (x + 0.25, 0.45)], _dark(_METAL, 0.3), 0.007)
            p.stroke([(x + 0.25, -0.05), (x - 0.25, 0.45)], _dark(_METAL, 0.3), 0.007)
        p.fill([(0, 0.18), (a, 0.18), (a, 0.22), (0, 0.22)], _dark(_METAL, 0.15))
    p.outline(grille)
    p.gloss(p.ell(cx, 0.2, 0.15, a0=200, a1=245), 0.03, _WHITE)


def _guitar(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    c1, r1 = 0.55, 0.165 + r.uniform(-0.01, 0.01)
    c2, r2 = 0.775, 0.215
    left: list[Pt] = []
    ys = [c1 - r1 + (c2 + r2 - c1 + r1) * i / 60 for i in range(61)]
    for y in ys:
        w1 = math.sqrt(max(0.0, r1 * r1 - (y - c1) ** 2))
        w2 = math.sqrt(max(0.0, r2 * r2 - (y - c2) ** 2))
        w = max(w1, w2, 0.11 if c1 < y < c2 else 0.0)
        left.append((cx - w, y))
    body = left + [(2 * cx - x, y) for x, y in reversed(left)]
    p.shape(body, k.base, shade=0.12)
    with p.clip(body):
        guard = _vesica((cx + 0.02, 0.74), (cx + 0.16, 0.6), 0.35)
        p.fill(guard, k.deep)
    p.outline(body)
    p.fill(p.ell(cx, 0.64, 0.075), k.p1)
    p.fill(p.ell(cx, 0.64, 0.055), _DARK)
    p.shape(p.rr(cx - 0.09, 0.83, cx + 0.09, 0.87, 0.01), _DARKWOOD, shade=0.0)
    neck = p.rr(cx - 0.04, 0.1, cx + 0.04, 0.6, 0.005)
    p.shape(neck, _DARKWOOD, shade=0.0)
    for i in range(1, 9):
        y = 0.12 + i * 0.05
        p.stroke([(cx - 0.04, y), (cx + 0.04, y)], _METAL, 0.006)
    head = [(cx - 0.06, 0.0), (cx + 0.06, 0.0), (cx + 0.045, 0.12), (cx - 0.045, 0.12)]
    p.shape(head, _DARKWOOD, shade=0.0)
    for i in range(3):
        y = 0.025 + i * 0.035
        for side in (-1, 1):
            p.shape(p.ell(cx + side * 0.085, y, 0.022, 0.013), _METAL, shade=0.0)
    for dx in (-0.024, -0.008, 0.008, 0.024):
        p.stroke([(cx + dx * 0.8, 0.02), (cx + dx, 0.85)], (236, 232, 220), 0.004)
    p.gloss(p.ell(cx, c2, r2 - 0.04, a0=160, a1=210), 0.02)


def _fireworks(p: _Pen, k: _Ink, r: random.Random) -> None:
    bursts = [
        (0.41, 0.41, 0.39, k.base, 14),
        (0.79, 0.72, 0.2, k.p1, 10),
        (0.2, 0.81, 0.17, k.p2, 9),
    ]
    for bi, (bx, by, rad, col, n) in enumerate(bursts):
        off = r.uniform(0, 360)
        for i in range(n):
            ang = math.radians(off + 360 * i / n)
            long_ray = i % 2 == 0
            r0, r1 = rad * 0.28, rad * (1.0 if long_ray else 0.72)
            wdt = rad * (0.085 if long_ray else 0.07)
            ca, sa = math.cos(ang), math.sin(ang)
            mid = r0 + (r1 - r0) * 0.7
            ray = [
                (bx + r0 * ca, by + r0 * sa),
                (bx + mid * ca - wdt * sa, by + mid * sa + wdt * ca),
                (bx + r1 * ca, by + r1 * sa),
                (bx + mid * ca + wdt * sa, by + mid * sa - wdt * ca),
            ]
            p.shape(ray, col, shade=0.0)
            if not long_ray:
                dr = r1 + rad * 0.15
                p.shape(p.ell(bx + dr * ca, by + dr * sa, rad * 0.07), _lite(col, 0.4), shade=0.0)
        p.shape(_star(bx, by, rad * 0.2, rad * 0.09, 4 + bi), _lite(col, 0.6), shade=0.0)
    for _ in range(5):
        x, y = r.uniform(0.1, 0.9), r.uniform(0.1, 0.9)
        p.fill(_star(x, y, 0.025, 0.008, 4), k.gloss)


def _ticket(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    y0, y1, perf = 0.12, 0.88, a - 0.5
    pts: list[Pt] = [(0.0, y0)]
    pts += p.ell(perf, y0, 0.06, a0=180, a1=0)
    pts += [(a, y0)]
    pts += p.ell(a, 0.5, 0.09, a0=270, a1=90)
    pts += [(a, y1)]
    pts += p.ell(perf, y1, 0.06, a0=0, a1=-180)
    pts += [(0.0, y1)]
    pts += p.ell(0.0, 0.5, 0.09, a0=90, a1=-90)
    p.shape(pts, k.base, shade=0.06)
    with p.clip(pts):
        p.fill([(perf, 0), (a, 0), (a, 1), (perf, 1)], k.p1)
        p.stroke(p.rr(0.13, y0 + 0.07, perf - 0.07, y1 - 0.07, 0.03), k.light, 0.012, closed=True)
    p.outline(pts)
    for i in range(9):
        y = y0 + 0.1 + i * (y1 - y0 - 0.2) / 8
        p.stroke([(perf, y - 0.018), (perf, y + 0.018)], k.line, 0.014)
    title = p.rr(0.22, 0.28, perf - 0.17, 0.42, 0.02)
    p.fill(title, k.gloss)
    p.fill(p.rr(0.22, 0.5, perf - 0.3, 0.55, 0.015), k.light)
    p.fill(p.rr(0.22, 0.62, perf - 0.45, 0.67, 0.015), k.light)
    p.shape(_star(a - 0.25, 0.5, 0.15, r.uniform(0.06, 0.075)), _lite(k.p1, 0.7), shade=0.0)


# =========================================================================== nature


def _tree(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    bark = (126, 84, 54)
    trunk = [
        (cx - 0.13, 0.995),
        (cx - 0.06, 0.9),
        (cx - 0.05, 0.55),
        (cx + 0.05, 0.55),
        (cx + 0.06, 0.9),
        (cx + 0.13, 0.995),
    ]
    p.shape(trunk, bark, shade=0.2)
    p.tube([(cx, 0.7), (cx - 0.16, 0.55)], bark, 0.04)
    p.tube([(cx + 0.01, 0.66), (cx + 0.16, 0.53)], bark, 0.035)
    p.stroke([(cx - 0.02, 0.75), (cx - 0.02, 0.9)], _dark(bark, 0.3), 0.01)
    blobs = [
        (cx, 0.23, 0.22),
        (cx - 0.22, 0.34, 0.17),
        (cx + 0.22, 0.34, 0.17),
        (cx - 0.25, 0.53, 0.15),
        (cx + 0.25, 0.53, 0.15),
        (cx, 0.46, 0.22),
    ]
    polys = [
        p.ell(x + r.uniform(-0.01, 0.01), y, rad + r.uniform(-0.01, 0.01)) for x, y, rad in blobs
    ]
    p.union(polys, k.base, shade=0.12)
    for x, y, rad in blobs[:3]:
        p.gloss(p.ell(x, y, rad * 0.7, a0=200, a1=245), 0.022, k.light)
    if r.random() < 0.6:
        for _ in range(5):
            x, y = cx + r.uniform(-0.3, 0.3), r.uniform(0.2, 0.58)
            p.shape(p.ell(x, y, 0.032), k.p1, shade=0.0)


def _mountain(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    back_peak = (0.45 + r.uniform(-0.05, 0.05), 0.22)
    back = [(0.05, 0.96), back_peak, (0.85, 0.96)]
    p.shape(back, _lite(k.base, 0.25), shade=0.0)
    with p.clip(back):
        p.fill(
            [back_peak, (0.85, 0.96), (back_peak[0] + 0.05, 0.96)], _dark(_lite(k.base, 0.25), 0.15)
        )
        snow = [
            (back_peak[0] - 0.3, 0.45),
            (back_peak[0] - 0.1, 0.42),
            (back_peak[0] - 0.02, 0.47),
            (back_peak[0] + 0.06, 0.41),
            (back_peak[0] + 0.3, 0.45),
            (back_peak[0], 0.1),
        ]
        p.fill(snow, _PAPER)
    p.outline(back)
    peak = (0.92, 0.04)
    main = [(0.3, 0.96), peak, (1.06, 0.19), (a - 0.02, 0.96)]
    p.shape(main, k.base, shade=0.0)
    with p.clip(main):
        p.fill([peak, (1.06, 0.19), (a - 0.02, 0.96), (1.0, 0.96), (0.98, 0.55)], k.shade)
        snow = [
            (0.6, 0.35),
            (0.78, 0.29),
            (0.84, 0.36),
            (0.91, 0.27),
            (0.98, 0.36),
            (1.04, 0.28),
            (1.3, 0.34),
            (1.06, 0.0),
            (0.92, -0.05),
        ]
        p.fill(snow, _PAPER)
        p.fill(
            [(0.92, 0.0), (1.3, 0.34), (1.04, 0.28), (0.98, 0.36), (0.95, 0.1)], _dark(_PAPER, 0.1)
        )
    p.outline(main)
    hill = [(0.0, 0.99), (a, 0.99), (a, 0.9)]
    for i in range(20, -1, -1):
        x = a * i / 20
        hill.append((x, 0.89 + 0.025 * math.sin(i * 1.1)))
    p.shape(hill, _GREEN, shade=0.0)


def _flower(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx, cy = a / 2, 0.3
    p.tube(_bez((cx, 0.45), (cx + 0.06, 0.75), (cx - 0.02, 0.995)), _LEAFGREEN, 0.04)
    p.shape(_vesica((cx + 0.02, 0.78), (0.03, 0.6), 0.32), _GREEN, shade=0.1)
    p.shape(_vesica((cx + 0.03, 0.86), (a - 0.04, 0.68), 0.3), _GREEN, shade=0.1)
    p.stroke([(cx + 0.0, 0.775), (0.09, 0.625)], _dark(_GREEN, 0.3), 0.01)
    p.stroke([(cx + 0.05, 0.855), (a - 0.09, 0.7)], _dark(_GREEN, 0.3), 0.01)
    n = r.choice([5, 6, 7, 8])
    off = r.uniform(0, 360 / n)
    for i in range(n):
        ang = off + 360 * i / n
        t = math.radians(ang)
        petal = _vesica(
            (cx, cy), (cx + 0.3 * math.cos(t), cy + 0.3 * math.sin(t)), 0.28 if n > 6 else 0.34
        )
        p.shape(petal, k.base, shade=0.1)
        p.stroke(
            [
                (cx + 0.1 * math.cos(t), cy + 0.1 * math.sin(t)),
                (cx + 0.2 * math.cos(t), cy + 0.2 * math.sin(t)),
            ],
            k.light,
            0.012,
        )
    p.circle(cx, cy, 0.095, k.p1 if _dist(k.p1, k.base) > 90 else _YELLOW, shade=0.2)
    for i in range(7):
        t = math.radians(i * 51)
        p.fill(p.ell(cx + 0.045 * math.cos(t), cy + 0.045 * math.sin(t), 0.012), _dark(k.p1, 0.35))


def _sun(p: _Pen, k: _Ink, r: random.Random) -> None:
    n = r.choice([10, 12, 12, 14])
    off = r.uniform(0, 360 / n)
    for i in range(n):
        t = math.radians(off + 360 * i / n)
        r1 = 0.49 if i % 2 == 0 else 0.43
        hw = math.radians(9)
        ray = [
            (0.5 + 0.33 * math.cos(t - hw), 0.5 + 0.33 * math.sin(t - hw)),
            (0.5 + r1 * math.cos(t), 0.5 + r1 * math.sin(t)),
            (0.5 + 0.33 * math.cos(t + hw), 0.5 + 0.33 * math.sin(t + hw)),
        ]
        p.shape(ray, k.base if i % 2 == 0 else k.light, shade=0.0)
    p.circle(0.5, 0.5, 0.34, k.base, shade=0.12)
    p.fill(p.ell(0.47, 0.47, 0.24), _lite(k.base, 0.2))
    p.gloss(p.ell(0.5, 0.5, 0.28, a0=200, a1=245), 0.03)
    p.stroke(p.ell(0.5, 0.53, 0.12, 0.1, a0=20, a1=160), k.line, 0.022)
    for dx in (-0.09, 0.09):
        p.fill(p.ell(0.5 + dx, 0.44, 0.025, 0.035), k.line)
    for dx in (-0.15, 0.15):
        p.fill(p.ell(0.5 + dx, 0.53, 0.04, 0.022), _mix(k.base, _RED, 0.35))


def _leaf(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    base, tip = (cx, 0.85), (cx + r.uniform(-0.02, 0.02), 0.0)
    p.tube(_bez((cx, 0.82), (cx + 0.01, 0.92), (cx - 0.04, 0.995)), _dark(k.base, 0.25), 0.03)
    body = _vesica(base, tip, 0.37, skew=r.uniform(-0.1, 0.1))
    p.shape(body, k.base, shade=0.14)
    with p.clip(body):
        p.fill([*_vesica(base, tip, 0.37)[: len(body) // 2], tip], k.shade)
    p.outline(body)
    p.stroke(_bez(base, (cx + 0.02, 0.45), tip), k.light, 0.02)
    for i in range(1, 6):
        y = 0.85 - i * 0.135
        for side in (-1, 1):
            p.stroke(
                [(cx + 0.01 * side, y), (cx + side * 0.19 * (1 - abs(0.4 - i * 0.13)), y - 0.1)],
                k.light,
                0.012,
            )


def _wave(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    ccx, ccy, ro0 = 0.46, 0.43, 0.4
    sweep = 320.0 + r.uniform(-20, 20)
    outer: list[Pt] = []
    inner: list[Pt] = []
    for i in range(73):
        s = i / 72
        ang = math.radians(-90 - sweep * s)
        ro = ro0 * (1 - 0.72 * s)
        wd = 0.17 * min(1.0, s / 0.12) * (1 - s) ** 1.3 + 0.012
        outer.append((ccx + ro * math.cos(ang), ccy + ro * math.sin(ang)))
        inner.append((ccx + (ro - wd) * math.cos(ang), ccy + (ro - wd) * math.sin(ang)))
    crest = outer[0]
    cut = int(72 * 150 / sweep)
    lip = outer[cut]
    body = [(0.02, 0.995), (a, 0.995), (a, 0.8)]
    body += _bez3((a, 0.8), (0.98, 0.78), (0.9, crest[1]), crest)[1:]
    body += outer[1:cut]
    body += _bez3(lip, (lip[0] + 0.1, lip[1] + 0.12), (ccx + 0.05, 0.78), (ccx - 0.12, 0.9))
    body += _bez((ccx - 0.12, 0.9), (0.12, 0.95), (0.02, 0.995))[1:-1]
    p.shape(body, k.base, shade=0.06)
    with p.clip(body):
        p.fill(inner[10:], k.deep)
        for j in range(3):
            y = 0.86 + j * 0.045
            x0 = 0.3 - 0.06 * j
            pts = [
                (x0 + t * (a - x0 - 0.05), y + 0.01 * math.sin(t * 24 + j))
                for t in [q / 24 for q in range(25)]
            ]
            p.stroke(pts, k.light, 0.016)
    band = outer + list(reversed(inner))
    p.fill(band, k.light)
    p.stroke(inner[4:], k.line, p.lw)
    p.stroke(outer[cut - 2 :], k.line, p.lw)
    p.outline(body)
    for i in range(7):
        x, y = outer[1 + i * 4]
        p.shape(p.ell(x, y, 0.045 - 0.004 * i), _PAPER, shade=0.0)
    for i in range(3):
        x = 0.74 + i * 0.11
        y = 0.42 + i * 0.11
        p.gloss([(x, y), (x + 0.09, y + 0.08)], 0.02, _lite(k.base, 0.5))


def _bird(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    p.tube([(0.03, 0.92), (a - 0.03, 0.88)], (126, 84, 54), 0.045)
    p.shape(_vesica((0.95, 0.89), (1.1, 0.78), 0.3), _GREEN, shade=0.0)
    for x in (0.5, 0.62):
        p.stroke([(x, 0.72), (x - 0.01, 0.88)], _ORANGE, 0.018)
        p.stroke([(x - 0.04, 0.9), (x + 0.03, 0.9)], _ORANGE, 0.015)
    tail = [(0.3, 0.55), (0.0, 0.36), (0.06, 0.48), (0.0, 0.58), (0.3, 0.68)]
    p.shape(tail, k.deep, shade=0.0)
    body = p.ell(0.55, 0.56, 0.33, 0.22, rot=-12)
    p.shape(body, k.base, shade=0.12)
    with p.clip(body):
        p.fill(p.ell(0.66, 0.7, 0.27, 0.15, rot=-12), _lite(k.base, 0.6))
    p.outline(body)
    hy = 0.3 + r.uniform(-0.03, 0.02)
    head = p.ell(0.82, hy, 0.175)
    p.shape(head, k.base, shade=0.14)
    beak = [(0.96, hy - 0.05), (a - 0.005, hy + 0.02), (0.96, hy + 0.07)]
    p.shape(beak, _ORANGE, shade=0.0)
    p.fill(p.ell(0.86, hy - 0.03, 0.035), _DARK)
    p.fill(p.ell(0.87, hy - 0.04, 0.012), _WHITE)
    p.fill(p.ell(0.88, hy + 0.06, 0.03, 0.02), _mix(k.base, _RED, 0.4))
    wing = _vesica((0.68, 0.48), (0.2, 0.62), 0.25, skew=0.3)
    p.shape(wing, k.deep, shade=0.0)
    for i in range(3):
        x = 0.32 + i * 0.1
        p.stroke([(x, 0.6 - i * 0.01), (x + 0.08, 0.56 - i * 0.02)], k.shade, 0.01)
    p.gloss(p.ell(0.82, hy, 0.12, a0=200, a1=250), 0.02)


# =========================================================================== education


def _book(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    cover = [(0.02, 0.16), (cx, 0.25), (a - 0.02, 0.16), (a - 0.02, 0.9), (cx, 0.99), (0.02, 0.9)]
    p.shape(cover, k.base, shade=0.08)
    page_edge = _dark(_PAPER, 0.15)
    for side in (-1, 1):
        edge = [
            (cx, 0.93),
            *_bez((cx, 0.93), (cx + side * 0.3, 0.83), (cx + side * (cx - 0.05), 0.88))[1:],
            (cx + side * (cx - 0.05), 0.2),
        ]
        p.shape([*edge, (cx, 0.2)], page_edge, shade=0.0)
    for side in (-1, 1):
        page = _bez((cx, 0.18), (cx + side * 0.3, 0.02), (cx + side * (cx - 0.08), 0.08))
        page += _bez((cx + side * (cx - 0.08), 0.84), (cx + side * 0.3, 0.79), (cx, 0.9))
        p.shape(page, _PAPER, shade=0.0)
        lines = r.randint(6, 8)
        for j in range(lines):
            f = (j + 1) / (lines + 1)
            y0 = 0.13 + f * 0.62
            pts = _bez(
                (cx + side * 0.08, y0 + 0.07),
                (cx + side * 0.3, y0 - 0.08),
                (cx + side * (cx - 0.16), y0 - 0.02),
                8,
            )
            if side == 1 and j in (1, 2, 3):
                continue
            p.stroke(pts, (170, 172, 184), 0.014)
    img = [(cx + 0.12, 0.28), (cx + 0.46, 0.22), (cx + 0.46, 0.4), (cx + 0.12, 0.45)]
    p.shape(img, k.p1, shade=0.0)
    p.stroke([(cx, 0.18), (cx, 0.9)], _dark(_PAPER, 0.25), 0.012)
    p.shape(
        [
            (cx + 0.03, 0.9),
            (cx + 0.09, 0.88),
            (cx + 0.09, 1.0),
            (cx + 0.06, 0.96),
            (cx + 0.03, 0.995),
        ],
        k.p2,
        shade=0.0,
    )


def _pencil(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    p.shape(p.rr(0.0, 0.0, a, 0.12, 0.05), (238, 138, 150), shade=0.2)
    fer = p.rr(-0.005, 0.1, a + 0.005, 0.2, 0.01)
    p.shape(fer, _METAL, shade=0.2)
    for y in (0.13, 0.165):
        p.stroke([(0.0, y), (a, y)], _dark(_METAL, 0.35), 0.008)
    body = [(0.0, 0.2), (a, 0.2), (a, 0.76), (2 * a / 3, 0.785), (a / 3, 0.785), (0.0, 0.76)]
    wood = [(0.0, 0.75), (a, 0.75), (cx + 0.025, 0.935), (cx - 0.025, 0.935)]
    p.shape(wood, (238, 204, 156), shade=0.15)
    p.shape([(cx - 0.026, 0.93), (cx + 0.026, 0.93), (cx, 0.999)], _DARK, shade=0.0)
    p.fill(body, k.base)
    with p.clip(body):
        p.fill([(0, 0), (a / 3, 0), (a / 3, 1), (0, 1)], k.light)
        p.fill([(2 * a / 3, 0), (a, 0), (a, 1), (2 * a / 3, 1)], k.shade)
    p.outline(body)
    p.fill(
        p.rr(a / 3 + 0.012, 0.3, 2 * a / 3 - 0.012, 0.55, 0.01),
        _lite(k.base, 0.55) if r.random() < 0.5 else k.p1,
    )


def _grad_cap(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    cap_col = k.base
    skull = [(cx - 0.36, 0.36), (cx + 0.36, 0.36), (cx + 0.34, 0.72)]
    skull += _bez((cx + 0.34, 0.72), (cx, 0.84), (cx - 0.34, 0.72))[1:]
    p.shape(skull, k.shade, shade=0.15)
    board = [(cx, 0.02), (a - 0.01, 0.27), (cx, 0.52), (0.01, 0.27)]
    p.shape(_shift(board, 0, 0.05), k.deep, shade=0.0)
    p.shape(board, cap_col, shade=0.0)
    with p.clip(board):
        p.fill([(cx, 0.52), (a, 0.27), (a, 0.6)], k.shade)
    p.outline(board)
    p.gloss([(0.2, 0.27), (cx - 0.05, 0.1)], 0.02)
    tassel = k.p1
    side = 1 if r.random() < 0.7 else -1
    tx = cx + side * (cx - 0.18)
    p.tube([(cx, 0.27), (tx, 0.33), (tx, 0.6)], tassel, 0.025)
    fr = [(tx - 0.035, 0.6), (tx + 0.035, 0.6), (tx + 0.07, 0.84), (tx - 0.07, 0.84)]
    p.shape(fr, tassel, shade=0.0)
    for i in range(1, 5):
        x0 = tx - 0.035 + 0.07 * i / 5
        x1 = tx - 0.07 + 0.14 * i / 5
        p.stroke([(x0, 0.64), (x1, 0.83)], _dark(tassel, 0.3), 0.008)
    p.circle(tx, 0.59, 0.03, _dark(tassel, 0.1), shade=0.0)
    p.shape(p.ell(cx, 0.27, 0.05, 0.03), tassel, shade=0.0)


def _globe(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx, cy, rad = a / 2, 0.4, 0.33
    p.shape(p.rr(cx - 0.25, 0.92, cx + 0.25, 0.995, 0.03), _DARK, shade=0.0)
    p.shape(
        [(cx - 0.04, 0.8), (cx + 0.04, 0.8), (cx + 0.07, 0.93), (cx - 0.07, 0.93)], _GOLD, shade=0.0
    )
    stand = _band(cx, cy, (0.395, 0.395), (0.36, 0.36), 95, 290, 40)
    p.shape(stand, _GOLD, shade=0.0)
    sphere = p.ell(cx, cy, rad)
    p.shape(sphere, k.base, shade=0.12)
    land = _GREEN if _dist(_GREEN, k.base) > 90 else k.p1
    with p.clip(sphere):
        for bx, by, br in (
            (cx - 0.12, cy - 0.1, 0.14),
            (cx + 0.13, cy + 0.12, 0.12),
            (cx + 0.16, cy - 0.18, 0.08),
        ):
            pts = []
            ph = [r.uniform(0, math.tau) for _ in range(3)]
            for i in range(24):
                t = math.tau * i / 24
                rr_ = br * (
                    1
                    + 0.22 * math.sin(2 * t + ph[0])
                    + 0.15 * math.sin(3 * t + ph[1])
                    + 0.1 * math.sin(5 * t + ph[2])
                )
                pts.append((bx + rr_ * math.cos(t), by + rr_ * 1.1 * math.sin(t)))
            p.shape(pts, land, shade=0.0, line=False)
        for dy in (-0.16, 0.0, 0.16):
            hw = math.sqrt(max(0.0, rad * rad - dy * dy))
            p.stroke(p.ell(cx, cy + dy, hw, 0.035, a0=0, a1=180), k.light, 0.008)
        p.stroke(p.ell(cx, cy, 0.12, rad, a0=-90, a1=90), k.light, 0.008)
    p.outline(sphere)
    p.gloss(p.ell(cx, cy, rad - 0.05, a0=195, a1=245), 0.03)
    p.fill(p.ell(cx + 0.26, cy - 0.26, 0.025), _GOLD)


def _lightbulb(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx, cy, rad = a / 2, 0.45, 0.26
    for ang in (-160, -125, -90, -55, -20):
        t = math.radians(ang)
        p.tube(
            [
                (cx + 0.33 * math.cos(t), cy + 0.33 * math.sin(t)),
                (cx + 0.42 * math.cos(t), cy + 0.42 * math.sin(t)),
            ],
            k.base,
            0.035,
        )
    glass = _lite(k.base, 0.62)
    e = p.ell(cx, cy, rad, a0=130, a1=410)
    bulb = (
        e
        + _bez(e[-1], (cx + 0.11, 0.7), (cx + 0.11, 0.75))[1:]
        + _bez((cx - 0.11, 0.75), (cx - 0.11, 0.7), e[0])[:-1]
    )
    p.shape(bulb, glass, shade=0.1)
    with p.clip(bulb):
        p.fill(p.ell(cx - 0.02, cy - 0.02, 0.2), _lite(k.base, 0.8))
    p.outline(bulb)
    fil = (214, 120, 40)
    p.stroke([(cx - 0.05, 0.75), (cx - 0.05, 0.5)], _dark(_METAL, 0.3), 0.012)
    p.stroke([(cx + 0.05, 0.75), (cx + 0.05, 0.5)], _dark(_METAL, 0.3), 0.012)
    nz = r.choice([6, 8, 10])
    zig = [(cx - 0.05 + 0.1 * i / nz, 0.5 + (0.03 if i % 2 else 0.0)) for i in range(nz + 1)]
    p.stroke(zig, fil, 0.014)
    p.gloss(p.ell(cx, cy, rad - 0.05, a0=195, a1=245), 0.03, _WHITE)
    for i, y in enumerate((0.74, 0.8, 0.86)):
        w = 0.125 - 0.008 * i
        p.shape(
            p.rr(cx - w, y, cx + w, y + 0.065, 0.02),
            _METAL if i % 2 == 0 else _dark(_METAL, 0.15),
            shade=0.2,
        )
    p.shape(
        [(cx - 0.08, 0.92), (cx + 0.08, 0.92), (cx + 0.04, 0.99), (cx - 0.04, 0.99)],
        _DARK,
        shade=0.0,
    )


def _flask(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    nw = 0.1
    glass = _mix((228, 240, 246), k.base, 0.08)
    body = [(cx - nw, 0.12), (cx + nw, 0.12), (cx + nw, 0.4), (a - 0.03, 0.88)]
    body += _bez((a - 0.03, 0.88), (a, 0.99), (a - 0.12, 0.99))[1:]
    body += [(0.12, 0.99)]
    body += _bez((0.12, 0.99), (0.0, 0.99), (0.03, 0.88))[1:]
    body += [(cx - nw, 0.4)]
    p.shape(body, glass, shade=0.08)
    lvl = 0.6 + r.uniform(-0.04, 0.04)
    with p.clip(body):
        liq = (
            [(0, lvl)]
            + [(a * i / 12, lvl + 0.015 * math.sin(i * 1.6)) for i in range(13)]
            + [(a, 1), (0, 1)]
        )
        p.shape(liq, k.base, shade=0.14, line=False)
        for _ in range(5):
            x, y = r.uniform(0.2, a - 0.2), r.uniform(lvl + 0.05, 0.92)
            p.stroke(p.ell(x, y, 0.025), k.gloss, 0.008, closed=True)
    p.outline(body)
    for i in range(3):
        y = 0.5 + i * 0.1
        x = cx - nw - (y - 0.4) / (0.88 - 0.4) * (cx - nw - 0.03) + 0.04
        p.stroke([(x, y), (x + 0.07, y)], _dark(glass, 0.35), 0.01)
    p.shape(p.rr(cx - nw - 0.04, 0.09, cx + nw + 0.04, 0.15, 0.02), glass, shade=0.0)
    p.gloss([(cx - nw + 0.03, 0.2), (cx - nw + 0.03, 0.38), (0.12, 0.82)], 0.025, _WHITE)
    for x, y, rad in ((cx + 0.04, 0.05, 0.03), (cx - 0.05, 0.02, 0.018)):
        p.stroke(p.ell(x, y, rad), k.base, 0.01, closed=True)


# =========================================================================== entertainment


def _film_reel(p: _Pen, k: _Ink, r: random.Random) -> None:
    cx, cy, rad = 0.43, 0.43, 0.42
    film = _DARK
    strip = _bez3((cx, cy + rad - 0.04), (0.6, 0.9), (0.8, 0.84), (1.0, 0.8))
    strip += _bez3((1.0, 0.97), (0.8, 1.0), (0.55, 1.0), (cx - 0.05, cy + rad - 0.02))
    p.shape(strip, film, shade=0.0)
    for i in range(7):
        x = 0.52 + i * 0.068
        yt = 0.9 - 0.14 * (x - 0.52) + (0.02 if x < 0.6 else 0)
        p.fill(p.rr(x - 0.015, yt - 0.012, x + 0.015, yt + 0.005, 0.004), _PAPER)
    reel = p.ell(cx, cy, rad)
    p.shape(reel, k.base, shade=0.1)
    p.stroke(p.ell(cx, cy, rad - 0.045), k.shade, 0.02, closed=True)
    n = r.choice([5, 6])
    off = r.uniform(0, 360 / n)
    for i in range(n):
        t = math.radians(off + 360 * i / n)
        p.hole(p.ell(cx + 0.23 * math.cos(t), cy + 0.23 * math.sin(t), 0.095))
    p.circle(cx, cy, 0.07, k.light, shade=0.2)
    p.hole(p.ell(cx, cy, 0.025), line=False)
    p.gloss(p.ell(cx, cy, rad - 0.05, a0=200, a1=235), 0.02)


def _game_controller(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    for side in (-1, 1):
        p.shape(
            p.rr(cx + side * 0.5 - 0.15, 0.06, cx + side * 0.5 + 0.15, 0.2, 0.05), k.deep, shade=0.0
        )
    body = p.rr(0.15, 0.13, a - 0.15, 0.62, 0.2)
    grips = [p.ell(0.3, 0.63, 0.2, 0.3, rot=28), p.ell(a - 0.3, 0.63, 0.2, 0.3, rot=-28)]
    p.union([body, *grips], k.base, shade=0.1)
    p.fill(p.rr(0.5, 0.42, a - 0.5, 0.62, 0.1), k.shade)
    dx, dy = 0.37, 0.36
    cross = [
        (dx - 0.035, dy - 0.11),
        (dx + 0.035, dy - 0.11),
        (dx + 0.035, dy - 0.035),
        (dx + 0.11, dy - 0.035),
        (dx + 0.11, dy + 0.035),
        (dx + 0.035, dy + 0.035),
        (dx + 0.035, dy + 0.11),
        (dx - 0.035, dy + 0.11),
        (dx - 0.035, dy + 0.035),
        (dx - 0.11, dy + 0.035),
        (dx - 0.11, dy - 0.035),
        (dx - 0.035, dy - 0.035),
    ]
    p.shape(cross, _DARK, shade=0.0)
    bx, by = a - 0.37, 0.36
    cols = [k.p1, k.p2, k.p3, _lite(k.p1, 0.5)]
    r.shuffle(cols)
    for i, (ox, oy) in enumerate(((0, -0.085), (0.085, 0), (0, 0.085), (-0.085, 0))):
        p.circle(bx + ox, by + oy, 0.045, cols[i], shade=0.2)
    for sx in (cx - 0.16, cx + 0.16):
        p.circle(sx, 0.53, 0.075, _DARK, shade=0.0)
        p.fill(p.ell(sx - 0.01, 0.52, 0.045), (80, 80, 92))
    for sx in (cx - 0.07, cx + 0.07):
        p.fill(p.rr(sx - 0.035, 0.28, sx + 0.035, 0.31, 0.012), _dark(k.base, 0.45))
    p.gloss(p.ell(cx, 0.45, 0.5, 0.3, a0=210, a1=250), 0.025)


def _music_note(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    lift = r.uniform(0.0, 0.05)
    h1 = p.ell(0.19, 0.82, 0.17, 0.12, rot=-22)
    h2 = p.ell(a - 0.21, 0.72 - lift, 0.17, 0.12, rot=-22)
    s1 = [(0.29, 0.13), (0.35, 0.12), (0.35, 0.8), (0.29, 0.8)]
    x2 = a - 0.11
    s2 = [(x2 - 0.06, 0.03), (x2, 0.02), (x2, 0.7 - lift), (x2 - 0.06, 0.7 - lift)]
    beam = [(0.29, 0.1), (x2, 0.0), (x2, 0.15), (0.29, 0.25)]
    p.union([h1, h2, s1, s2, beam], k.base, shade=0.1)
    p.fill([(0.29, 0.3), (x2, 0.2), (x2, 0.25), (0.29, 0.35)], k.base)
    p.gloss(p.ell(0.19, 0.82, 0.1, 0.06, rot=-22, a0=190, a1=260), 0.025)
    p.gloss(p.ell(a - 0.21, 0.72 - lift, 0.1, 0.06, rot=-22, a0=190, a1=260), 0.025)
    p.gloss([(0.33, 0.14), (x2 - 0.03, 0.05)], 0.02)


def _popcorn(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    cx = a / 2
    kern = (252, 242, 206)
    spots = [
        (cx - 0.26, 0.33),
        (cx - 0.13, 0.3),
        (cx, 0.3),
        (cx + 0.13, 0.3),
        (cx + 0.26, 0.33),
        (cx - 0.2, 0.2),
        (cx - 0.06, 0.17),
        (cx + 0.08, 0.18),
        (cx + 0.21, 0.21),
        (cx - 0.12, 0.07),
        (cx + 0.03, 0.065),
        (cx + 0.15, 0.1),
    ]
    for x, y in spots:
        x += r.uniform(-0.015, 0.015)
        y += r.uniform(-0.01, 0.01)
        puffs = [(x + 0.055 * math.cos(t), y + 0.05 * math.sin(t)) for t in (0.3, 2.4, 4.4)]
        for px_, py_ in puffs:
            p.stroke(p.ell(px_, py_, 0.05), k.line, 2 * p.lw, closed=True)
        for px_, py_ in puffs:
            p.fill(p.ell(px_, py_, 0.05), _dark(kern, 0.12))
        for px_, py_ in puffs:
            p.fill(p.ell(px_ - 0.008, py_ - 0.008, 0.04), kern)
        p.fill(p.ell(x, y, 0.018), (240, 198, 100))
    cup = [(0.05, 0.36), (a - 0.05, 0.36), (a - 0.17, 0.995), (0.17, 0.995)]
    p.shape(cup, _WHITE, shade=0.0)
    with p.clip(cup):
        n = 7
        for i in range(n):
            t0, t1 = i / n, (i + 1) / n
            top0, top1 = 0.05 + (a - 0.1) * t0, 0.05 + (a - 0.1) * t1
            bot0, bot1 = 0.17 + (a - 0.34) * t0, 0.17 + (a - 0.34) * t1
            col = k.base if i % 2 == 0 else _WHITE
            if i >= n - 2:
                col = _dark(col, 0.18)
            p.fill([(top0, 0.36), (top1, 0.36), (bot1, 1.0), (bot0, 1.0)], col)
    p.outline(cup)
    p.shape(p.rr(0.03, 0.34, a - 0.03, 0.42, 0.02), k.light, shade=0.0)
    p.circle(cx, 0.66, 0.12, k.p1, shade=0.0)
    p.shape(_star(cx, 0.665, 0.09, 0.04), _PAPER, shade=0.0)


def _clapperboard(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    dark, white = _DARK, (246, 246, 244)
    board = p.rr(0.04, 0.38, a - 0.02, 0.99, 0.03)
    p.shape(board, k.base, shade=0.06)
    chalk = _lite(k.base, 0.75)
    for y in (0.56, 0.73, 0.88):
        p.stroke([(0.1, y), (a - 0.09, y)], chalk, 0.01)
    p.stroke([(a / 2, 0.56), (a / 2, 0.88)], chalk, 0.01)
    for x0, y0, w in (
        (0.12, 0.44, 0.5),
        (0.12, 0.62, 0.28),
        (a / 2 + 0.06, 0.62, 0.3),
        (0.12, 0.79, 0.22),
    ):
        p.fill(p.rr(x0, y0, x0 + w, y0 + 0.05, 0.015), chalk)

    def stick(pts: list[Pt]) -> None:
        p.fill(pts, dark)
        with p.clip(pts):
            for i in range(-2, 10):
                x = 0.04 + i * 0.14
                p.fill([(x, -0.2), (x + 0.07, -0.2), (x - 0.05, 0.7), (x - 0.12, 0.7)], white)
        p.outline(pts)

    stick(p.rr(0.04, 0.27, a - 0.02, 0.39, 0.01))
    ang = -15 + r.uniform(-4, 4)
    top = _rot(p.rr(0.04, 0.15, a - 0.02, 0.26, 0.01), ang, (0.05, 0.26))
    stick(_shift(top, 0, 0.0))
    p.circle(0.08, 0.27, 0.035, _METAL, shade=0.0)


def _star_shape(p: _Pen, k: _Ink, r: random.Random) -> None:
    a = p.a
    rad = 0.553
    cx, cy = a / 2, rad
    inner = rad * (0.48 + r.uniform(-0.03, 0.03))
    pts = _star(cx, cy, rad, inner)
    p.fill(pts, k.base)
    light = (-0.6, -0.8)
    for i in range(0, 10, 2):
        tip = pts[i]
        for nb in (pts[i - 1], pts[(i + 1) % 10]):
            tri = [(cx, cy), tip, nb]
            mx = (tip[0] + nb[0]) / 2 - cx
            my = (tip[1] + nb[1]) / 2 - cy
            n = math.hypot(mx, my) or 1.0
            d = (mx * light[0] + my * light[1]) / n
            side = (nb[0] - tip[0]) * light[1] - (nb[1] - tip[1]) * light[0]
            col = (
                _lite(k.base, 0.25 * max(0.0, d))
                if side > 0
                else _dark(k.base, 0.12 + 0.18 * max(0.0, -d))
            )
            p.fill(tri, col)
    p.outline(pts)
    p.gloss([(cx - 0.28, 0.42), (cx - 0.18, 0.42)], 0.03)
    p.fill(_star(cx - 0.02, 0.2, 0.05, 0.015, 4), _WHITE)


# --------------------------------------------------------------------------- registry

# name -> (aspect w/h of the design box, base tilt in degrees, tilt jitter, painter)
_Painter = Callable[[_Pen, _Ink, random.Random], None]
_SPECS: dict[str, tuple[float, float, float, _Painter]] = {
    "bottle": (0.42, 0.0, 4.0, _bottle),
    "perfume": (0.78, 0.0, 0.0, _perfume),
    "phone": (0.5, 0.0, 4.0, _phone),
    "laptop": (1.45, 0.0, 0.0, _laptop),
    "headphones": (1.0, 0.0, 3.0, _headphones),
    "watch": (0.6, 0.0, 0.0, _watch),
    "sneaker": (1.6, 0.0, 3.0, _sneaker),
    "handbag": (1.1, 0.0, 0.0, _handbag),
    "lipstick": (0.36, 8.0, 4.0, _lipstick),
    "camera": (1.35, 0.0, 0.0, _camera),
    "lamp": (0.75, 0.0, 0.0, _lamp),
    "chair": (0.8, 0.0, 0.0, _chair),
    "cup": (1.0, 0.0, 0.0, _cup),
    "burger": (1.3, 0.0, 0.0, _burger),
    "pizza": (1.0, 0.0, 8.0, _pizza),
    "cake": (0.95, 0.0, 0.0, _cake),
    "ice_cream": (0.62, 0.0, 4.0, _ice_cream),
    "fruit": (0.95, 0.0, 5.0, _fruit),
    "bowl": (1.4, 0.0, 0.0, _bowl),
    "donut": (1.0, 0.0, 0.0, _donut),
    "bread": (1.55, 0.0, 3.0, _bread),
    "balloon": (0.62, 0.0, 6.0, _balloon),
    "gift": (1.0, 0.0, 0.0, _gift),
    "trophy": (0.9, 0.0, 0.0, _trophy),
    "microphone": (0.42, 20.0, 5.0, _microphone),
    "guitar": (0.5, 30.0, 4.0, _guitar),
    "fireworks": (1.0, 0.0, 0.0, _fireworks),
    "ticket": (1.8, -10.0, 3.0, _ticket),
    "tree": (0.9, 0.0, 0.0, _tree),
    "mountain": (1.5, 0.0, 0.0, _mountain),
    "flower": (0.7, 0.0, 3.0, _flower),
    "sun": (1.0, 0.0, 0.0, _sun),
    "leaf": (0.62, 28.0, 6.0, _leaf),
    "wave": (1.2, 0.0, 0.0, _wave),
    "bird": (1.15, 0.0, 0.0, _bird),
    "book": (1.35, 0.0, 0.0, _book),
    "pencil": (0.17, 40.0, 5.0, _pencil),
    "grad_cap": (1.35, 0.0, 4.0, _grad_cap),
    "globe": (0.82, 0.0, 0.0, _globe),
    "lightbulb": (0.9, 0.0, 0.0, _lightbulb),
    "flask": (0.8, 0.0, 0.0, _flask),
    "film_reel": (1.0, 0.0, 0.0, _film_reel),
    "game_controller": (1.5, 0.0, 0.0, _game_controller),
    "music_note": (0.85, 0.0, 5.0, _music_note),
    "popcorn": (0.85, 0.0, 0.0, _popcorn),
    "clapperboard": (1.1, 0.0, 0.0, _clapperboard),
    "star": (1.05, 0.0, 8.0, _star_shape),
}
assert tuple(_SPECS) == SHAPES


def draw_subject(
    shape: str,
    size: tuple[int, int],
    color: tuple[int, int, int],
    palette: Sequence[tuple[int, int, int]],
    rng: random.Random,
) -> Image.Image:
    """RGBA image of exactly `size` (w, h); alpha 255 on the object, 0 elsewhere."""
    spec = _SPECS.get(shape)
    if spec is None:
        raise ValueError(f"unknown subject shape {shape!r}; valid shapes: {', '.join(SHAPES)}")
    w, h = int(size[0]), int(size[1])
    if w < 1 or h < 1:
        raise ValueError(f"subject size must be positive, got {size!r}")
    aspect, tilt, jitter, painter = spec
    ink = _Ink(color, palette)
    theta = tilt + (rng.uniform(-jitter, jitter) if jitter else 0.0)

    ss = 3 if max(w, h) <= 160 else 2
    big_w, big_h = w * ss, h * ss
    avail_w, avail_h = big_w * (1 - 2 * _MARGIN), big_h * (1 - 2 * _MARGIN)
    th = math.radians(theta)
    ext_w = aspect * abs(math.cos(th)) + abs(math.sin(th))
    ext_h = aspect * abs(math.sin(th)) + abs(math.cos(th))
    scale = max(4.0, min(avail_w / ext_w, avail_h / ext_h))
    # Paint on a padded canvas so nothing is clipped, then fit the painted bounding box
    # into the free area of the output (this also centres it).
    pad = round(0.15 * scale) + 4
    img = Image.new("RGBA", (big_w + 2 * pad, big_h + 2 * pad), (0, 0, 0, 0))
    pen = _Pen(img, aspect, scale, (pad + big_w / 2, pad + big_h / 2), theta, ink, ss)
    painter(pen, ink, rng)
    return _fit(img, w, h)


def _fit(img: Image.Image, w: int, h: int) -> Image.Image:
    """Downscale the painted object into a w x h image with a margin; binarise alpha."""
    box = img.getchannel("A").getbbox()
    out = np.zeros((h, w, 4), dtype=np.uint8)
    if box is None:
        return Image.fromarray(out)
    crop = img.crop(box)
    fit = min(w * (1 - 2 * _MARGIN) / crop.width, h * (1 - 2 * _MARGIN) / crop.height)
    tw = max(1, min(w, round(crop.width * fit)))
    th = max(1, min(h, round(crop.height * fit)))
    arr = np.array(crop.resize((tw, th), Image.Resampling.LANCZOS))
    on = arr[..., 3] >= 128
    arr[~on] = 0
    arr[on, 3] = 255
    x0, y0 = (w - tw) // 2, (h - th) // 2
    out[y0 : y0 + th, x0 : x0 + tw] = arr
    return Image.fromarray(_recentre(out, out[..., 3] > 0))


def _recentre(arr: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Shift the drawn object so its bounding box is centred in the image."""
    cols = np.flatnonzero(on.any(axis=0))
    rows = np.flatnonzero(on.any(axis=1))
    if cols.size == 0:
        return arr
    h, w = on.shape
    dx = (w - (cols[-1] - cols[0] + 1)) // 2 - cols[0]
    dy = (h - (rows[-1] - rows[0] + 1)) // 2 - rows[0]
    if dx == 0 and dy == 0:
        return arr
    out = np.zeros_like(arr)
    x0, x1 = cols[0], cols[-1] + 1
    y0, y1 = rows[0], rows[-1] + 1
    out[y0 + dy : y1 + dy, x0 + dx : x1 + dx] = arr[y0:y1, x0:x1]
    return out
