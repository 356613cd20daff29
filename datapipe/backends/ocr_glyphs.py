"""Glyph shapes: is each glyph of a line drawn as its character, stroke for stroke?

A recogniser reads through a malformed glyph (a stroke band missing, half mirrored, a
stroke added): it was trained to read damaged print, so its confidence stays high. The
shape check compares each glyph's ink with the character drawn in reference fonts. A
poster's font differs from the references, which moves every glyph of the line alike;
a malformed glyph moves alone. So a glyph's evidence is its distance above the line's
median distance, and a line's score its worst glyph's (`ShapeCheck.outlier`); the
verdict is a recipe threshold on it. A font far from the references (a brush or Kai
face, a serif) spreads every glyph's distance as much as damage does: its lines are not
scored (`MAX_MEDIAN`), so the check covers the sans faces posters mostly use, and says
where it did not look.

CJK glyphs (`CJK`) are compared with Noto Sans CJK Bold and Regular (wheels), in the
font's Traditional and simplified regional forms. Latin letters and digits (`LATIN`)
differ more between sans fonts (a single- or double-storey g, a narrow or wide M), so
they are compared coarser, with their width pulled halfway to their height, and with
other designs besides Noto's (Pillow's Aileron; Source Sans Pro, with its alternate a,
g, I and l), in either case and upright or oblique.
What is left of one font's design is answered by the poster itself: a glyph drawn like
another glyph of its character on the same poster (`match_twins`) is that font's
design, not damage; damage strikes one glyph. The converse holds too: a glyph unlike
both the references and the other glyphs of its character on its line is damaged,
whatever the font (`ShapeCheck.repeated`), which allows a tighter bound than a glyph
alone. Look-alikes the recogniser reads as the copy are told by what differs: an l
drawn for an I by its height (`height`), an O for a 0 by its width (`width`), a letter
drawn for a digit by lying nearer that letter's references (`swap`).

The glyph's place comes from the recogniser (the frame where it read the character),
its columns from the ink between two places (`cells`).
"""

from __future__ import annotations

import string
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from datapipe.fonts import LATIN_FACES, font, pillow_sans, shaped, shaping

ALTERNATES = "salt"
"""The OpenType feature that draws a face's stylistic alternates (Source Sans Pro: a
single-storey a upright, a double-storey g, I with serifs, l with a tail)."""

SC = "zh-Hans"
"""The language whose regional forms a CJK glyph is also compared with."""


@dataclass(frozen=True)
class Comparison:
    """How a script's glyphs are compared: as `side` x `side` ink maps, blurred by
    `blur` so a stroke's weight matters less, the width pulled `stretch` of the way to
    the height (on a log scale) so a condensed or extended face matters less; the
    references drawn in each of `forms` (a language for the font's regional forms,
    "" for its default ones), and the faces of `alternates` in their stylistic
    alternates (`ALTERNATES`) too."""

    faces: tuple[str, ...]
    slants: tuple[float, ...]
    side: int
    blur: float
    stretch: float
    forms: tuple[str, ...] = ("",)
    alternates: tuple[str, ...] = ()


CJK = Comparison(
    faces=("bold", "regular"), slants=(0.0,), side=32, blur=1.2, stretch=0.0, forms=("", SC)
)
"""Both regional forms: Noto Sans CJK TC's own, which the procedural renderer draws, and
its simplified-Chinese ones, which mainland faces draw (Noto Sans SC, and what a model
trained on mainland posters writes). Measured on 24 good zh posters set in Noto Sans SC
(fontsource's files, not in the repository) under train.yaml's rules: against the TC
forms alone text_shape rejected 11 (辶 with one dot, 户, 心 drawn the mainland way:
0.15-0.42 over the line's median)."""
LATIN = Comparison(
    faces=("bold", "regular", "pillow", *LATIN_FACES),
    slants=(0.0, 0.2),
    side=16,
    blur=1.0,
    stretch=0.5,
    alternates=LATIN_FACES,
)
"""Measured on letters and digits set in 7 sans faces not among the references (DejaVu
Sans, Liberation Sans, their bold, oblique and narrow cuts) against the same glyphs in
Noto with a seeded damage: AUC 0.76 compared as CJK is, 0.94 as LATIN. Source Sans Pro
and its alternates were added for the letters whose design sans faces disagree on:
over 52 cuts of 14 sans families (fontsource's and Debian's, none a reference), a
single-storey a (Poppins, Futura-like faces, most italics) lay up to 0.67 above its
face's median against Noto and Aileron, 0.16 with Source Sans Pro's alternates; good
glyphs over 0.2 above their face's median fell from 23 of 3224 to 9."""
SNAP = 1.0
"""A cut through ink costs this many advances more than a cut through empty columns."""
WHOLE = 0.85
"""A connected part of the ink goes whole to the glyph whose columns hold this share."""
SPECK = 0.03
"""A part of the ink under this share of the line's median part is no glyph's (an i's
dot is 5-10 % of a letter; a fleck of texture 1-2 %)."""
MIN_GLYPHS = 3
"""A median needs three glyphs; a shorter line is not scored."""
FLAT = set("BDEFHIKLMNPRTXZ")
"""Capitals whose ink runs from the baseline to the cap height, no overshoot."""
STEADY_DIGITS = set("023456789")
"""Digits whose width varies among sans faces by at most 0.15 (log scale, the face's own
width taken out), measured over Noto Sans Bold and Regular, Aileron, DejaVu Sans (book,
bold, condensed, oblique) and Liberation Sans (regular, bold, narrow, italic): all but
the 1, a bar with or without a flag and a foot (its width is its design)."""
STEADY_LETTERS = set(string.ascii_letters) - set("vwZREFrtJ")
"""Letters whose width varies among those faces by at most 0.15 (v, w, Z, R, E, F, r, t
and J by more); geometric faces (Poppins) still draw C, G and a a quarter wider and E,
L narrower, so letters are only a last measure of a digit's width (`ShapeCheck.width`)."""
WIDE_ENOUGH = 0.45
"""Glyphs narrower than this (width over height, in the references: I, l, i, j, f) are
not compared in width: a bar's width is its stroke's weight, not its design."""
PROPORTIONED = 0.2
"""A glyph further than this from its line's median shape is not compared in width: its
shape is the shape rule's business, and a glyph cut wrong has a wrong width too (an O
drawn for a 0 lies 0.11-0.12 from its line's median)."""
CONFIRMS = 0.07
"""A glyph within this of its line's median distance is drawn as its character: the
recogniser's doubt about it is the recogniser's (measured: 满 in Noto Sans CJK TC read
at 0.77 and 0.75 on a clean poster, 0.05 over its line's median; the glyphs the shape
rule rejects lie 0.14 and more over it)."""
SLASHES = set("/\\")
"""Glyphs that lean over their neighbours' columns in every face: a cell beside one
gains or loses ink (Poppins' 1 after the / of 10/18 lost its flag to the slash's cell:
a bar, 0.18 nearer an l than a 1), so `ShapeCheck.swap` and `ShapeCheck.repeated` do
not judge a glyph there."""
ROUND_DIGITS = set("0")
"""Digits not compared with letters (`ShapeCheck.swap`): a 0 is an O in several sans
designs (Montserrat's and Raleway's 0 lie 0.14-0.15 nearer an O than a 0 reference),
so its width against its line's digits judges it (`ShapeCheck.width`)."""
MAX_MEDIAN = 0.1
"""A line whose median glyph is further than this from the references is set in a font
unlike them (measured: Noto Sans CJK lines <= 0.06 over 90 good lines at cluster sizes;
WenQuanYi Zen Hei 0.17-0.22, AR PL UKai 0.45-0.65), where one glyph's design can differ
from the reference as much as damage does: it is not scored (None), never rejected."""


def is_cjk(c: str) -> bool:
    return "\u4e00" <= c <= "\u9fff"


def is_latin(c: str) -> bool:
    """A Latin letter or a digit: the glyphs of en copy, and of prices in zh copy."""
    return c.isascii() and c.isalnum()


def _normalised(mask: np.ndarray, how: Comparison) -> np.ndarray | None:
    """The ink cut to its extent (1-99 % of its pixels, so a speck does not widen it),
    its width pulled toward its height (`how.stretch`; not for a bar such as l or 1,
    which would fill the square), centred in a square, scaled to `how.side`, blurred,
    zero-mean and unit norm."""
    rows, columns = mask.sum(axis=1), mask.sum(axis=0)
    if rows.sum() < 8:
        return None
    y0, y1 = (_quantile(rows, q) for q in (0.01, 0.99))
    x0, x1 = (_quantile(columns, q) for q in (0.01, 0.99))
    ink = Image.fromarray((mask[y0 : y1 + 1, x0 : x1 + 1] * 255).astype(np.uint8))
    w, h = ink.size
    if how.stretch and h / 3 <= w <= 3 * h:
        w = max(1, round(w * (h / w) ** how.stretch))
        ink = ink.resize((w, h), Image.Resampling.BILINEAR)
    side = max(h, w)
    square = Image.new("L", (side, side), 0)
    square.paste(ink, ((side - w) // 2, (side - h) // 2))
    small = square.resize((how.side, how.side), Image.Resampling.BILINEAR)
    v = np.asarray(small.filter(ImageFilter.GaussianBlur(how.blur)), np.float32)
    v = v - v.mean()
    norm = float(np.linalg.norm(v))
    return v / norm if norm else None


def _quantile(counts: np.ndarray, q: float) -> int:
    """The `q` quantile of the indices of `counts` (pixels per row or column), each
    taken as often as it counts, as `int(np.quantile(...))` gives it (linear between
    the two order statistics around it): from the counts, since a glyph is scored
    thousands of times a poster."""
    at = (int(counts.sum()) - 1) * q
    below = np.floor(at)
    t = at - below
    cumulative = np.cumsum(counts)
    a, b = (int(np.searchsorted(cumulative, k, side="right")) for k in (below, below + 1))
    return int(a + (b - a) * t if t < 0.5 else b - (b - a) * (1 - t))


def _face(name: str) -> ImageFont.FreeTypeFont:
    return pillow_sans(64) if name == "pillow" else font(name, 64)


def _drawn(char: str, face: str, form: str = "") -> Image.Image:
    """`char` in a reference face at 64 px, on a canvas with room for any glyph; in the
    font's stylistic alternates (`form` is `ALTERNATES`), its regional forms for the
    language `form`, or its default forms ("")."""
    canvas = Image.new("L", (160, 128), 0)
    draw = ImageDraw.Draw(canvas)
    if form == ALTERNATES:
        draw.text((40, 24), char, font=shaped(face, 64), fill=255, features=[form])
    elif form:
        draw.text((40, 24), char, font=shaped(face, 64), fill=255, language=form)
    else:
        draw.text((40, 24), char, font=_face(face), fill=255)
    return canvas


@lru_cache(maxsize=8192)
def reference(
    char: str, face: str, slant: float, how: Comparison, form: str = ""
) -> np.ndarray | None:
    """The character drawn in a reference face (in the forms of `form`, as `_drawn`), as
    a normalised ink map; `slant` shears it as an oblique face leans (x moves right by
    `slant` per pixel up)."""
    canvas = _drawn(char, face, form)
    if slant:
        shear = (1.0, slant, -slant * 64, 0.0, 1.0, 0.0)
        canvas = canvas.transform(canvas.size, Image.Transform.AFFINE, shear, Image.BILINEAR)
    return _normalised(np.asarray(canvas) > 128, how)


@lru_cache(maxsize=1024)
def reference_aspect(char: str) -> float | None:
    """The width over the height of `char`'s ink, the median over the upright reference
    faces of its script (None for a glyph with no ink)."""
    how = CJK if is_cjk(char) else LATIN
    aspects = []
    for face in how.faces:
        ys, xs = np.nonzero(np.asarray(_drawn(char, face)) > 128)
        if len(xs):
            aspects.append((xs.max() - xs.min() + 1) / (ys.max() - ys.min() + 1))
    return float(np.median(aspects)) if aspects else None


@lru_cache(maxsize=4096)
def references(char: str) -> np.ndarray:
    """What `char` may look like, one flattened normalised ink map a row (none alike):
    a CJK glyph in each reference weight and regional form; a Latin letter in each
    design (`designs`), in either case too (the recogniser's case of c/C, o/O, s/S ...
    is a guess, and a poster may set its copy in capitals)."""
    how = CJK if is_cjk(char) else LATIN
    cases = {char} if is_cjk(char) else {char, char.swapcase()}
    shapes = [(c, f, s, m) for c in sorted(cases) for f, m in designs(how) for s in how.slants]
    drawn = (reference(c, f, s, how, m) for c, f, s, m in shapes)
    rows = {r.tobytes(): r.ravel() for r in drawn if r is not None}
    return np.stack(list(rows.values())) if rows else np.zeros((0, how.side * how.side))


@lru_cache(maxsize=1)
def letters() -> np.ndarray:
    """Every Latin letter's `references` (both cases), stacked: what a digit drawn as a
    letter is compared with (`ShapeCheck.swap`)."""
    return np.concatenate([references(c) for c in string.ascii_lowercase])


@lru_cache(maxsize=4)
def designs(how: Comparison) -> tuple[tuple[str, str], ...]:
    """(face, form) of each reference design: every face in each of `how.forms`, the
    faces of `how.alternates` in their alternates too; only the default forms where
    Pillow cannot shape text, where a glyph drawn in another region's forms or an
    alternate design is compared with the default ones only, which can reject it: it
    is said once, with the fix."""
    every = [(f, m) for f in how.faces for m in how.forms]
    every += [(f, ALTERNATES) for f in how.alternates]
    if shaping() or all(m == "" for _, m in every):
        return tuple(every)
    warnings.warn(
        "Pillow cannot shape text here (no libraqm/FriBiDi), so the glyph shape check "
        "compares CJK glyphs with Traditional Chinese forms only and Latin letters "
        "without their alternate designs, and may reject simplified forms or a "
        "single-storey a (fix: install FriBiDi, e.g. apt install libfribidi0)",
        stacklevel=2,
    )
    return tuple((f, m) for f, m in every if m == "")


def ink_mask(crop: np.ndarray, pad: int) -> np.ndarray:
    """The line's ink: Otsu's split of the grey levels, the side that covers less of the
    line box (glyph strokes cover under half of it; the ground, a label behind the line
    or the poster beyond it cover the rest), less what is nearer the ground's colour than
    the ink's. The crop's `pad` around the box is ground."""
    grey = np.asarray(Image.fromarray(crop).convert("L"), np.uint8)
    hist = np.bincount(grey.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    w = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    between = (mu[-1] * w - mu) ** 2 / (w * (1 - w) + 1e-12)
    dark = grey <= int(np.argmax(between))
    inner = np.zeros_like(dark)
    inner[pad : max(pad, dark.shape[0] - pad), pad : max(pad, dark.shape[1] - pad)] = True
    ink = (dark if dark[inner].mean() < 0.5 else ~dark) & inner
    ground = inner & ~ink
    if not ink.any() or not ground.any():
        return ink
    # Grey levels can put a fleck of the ground's pattern on the ink's side (orange
    # confetti between red ground and white letters): ink is what is nearer the ink's
    # colour than the ground's.
    rgb = np.asarray(Image.fromarray(crop).convert("RGB"))
    ys, xs = np.nonzero(ink)
    pixels = rgb[ys, xs]
    drawn = pixels.astype(np.float32)
    to_ink = np.square(drawn - _median_colour(pixels)).sum(axis=1)
    to_ground = np.square(drawn - _median_colour(rgb[ground])).sum(axis=1)
    out = np.zeros_like(ink)
    near = to_ink < to_ground
    out[ys[near], xs[near]] = True
    return out


def _median_colour(pixels: np.ndarray) -> np.ndarray:
    """The median of each channel of (n, 3) 8-bit pixels, from their histograms (the
    ground of a long line holds a million pixels)."""
    out = np.empty(3, np.float32)
    middle = (len(pixels) - 1) // 2, len(pixels) // 2
    for channel in range(3):
        counts = np.cumsum(np.bincount(pixels[:, channel], minlength=256))
        low, high = np.searchsorted(counts, middle, side="right")
        out[channel] = (np.float32(low) + np.float32(high)) / np.float32(2)
    return out


@dataclass
class ShapeCheck:
    """Distances (1 - correlation with the nearest reference) of a line's glyphs of one
    script; `twins` from `match_twins`."""

    chars: str
    distances: list[float]
    places: list[int] = field(default_factory=list)
    """Each scored glyph's index among the read's glyphs (white space excluded)."""
    heights: list[float] = field(default_factory=list)
    """Each scored glyph's ink height, pixels (its first to its last row of ink)."""
    widths: list[float] = field(default_factory=list)
    """Each scored glyph's ink width, pixels (its first to its last column of ink)."""
    inks: list[np.ndarray] = field(default_factory=list, repr=False, compare=False)
    """Each scored glyph's normalised ink map, for `match_twins` and `repeated` (not
    stored)."""
    twins: list[float | None] = field(default_factory=list)
    """Each glyph's distance to the nearest other glyph of its character on the poster
    (None where it has none); empty until `match_twins`."""
    inkless: list[int] = field(default_factory=list)
    """Places of glyphs of the script that no cut gave ink: the cut went wrong there, so
    for an `alone` check their neighbours do not count either."""
    lent: float | None = None
    """For a line under `MIN_GLYPHS` glyphs (a price, ¥29起): the median distance of the
    poster's longer lines of its script (`lend_medians`), taken as its own."""
    lent_digits: list[float] = field(default_factory=list)
    """The width shares of the poster's other lines' digits (`lend_medians`), for a
    digit whose line holds under two others (a price, 20%)."""
    slashes: list[int] = field(default_factory=list)
    """Places of the line's `SLASHES` (among the read's glyphs, white space excluded)."""
    letterlike: list[float | None] = field(default_factory=list)
    """Each scored digit's distance to the nearest letter's references (`letters`);
    None for a letter and for a digit of `ROUND_DIGITS`."""
    alone: bool = False
    """Only a glyph whose neighbours fit their characters counts (Latin letters): a cut
    that misses a glyph's edge (a kerned AV, a descender under its neighbour) takes ink
    from one glyph into the next, so both stand out; damage strikes one."""

    @property
    def median(self) -> float | None:
        if len(self.distances) < MIN_GLYPHS and self.lent is not None:
            return self.lent
        return round(float(np.median(self.distances)), 4) if self.distances else None

    @property
    def own_excess(self) -> list[float]:
        """Each glyph's distance above the line's median, or its distance to its nearest
        twin where that is less (the font's design, shared by the twin)."""
        median = self.median or 0.0
        twins = self.twins or [None] * len(self.distances)
        return [
            d - median if t is None else min(d - median, t)
            for d, t in zip(self.distances, twins, strict=True)
        ]

    @property
    def excess(self) -> list[float]:
        """`own_excess`, where an `alone` glyph's neighbour does not fit 0."""
        raw = self.own_excess
        if self.alone:
            near = dict(zip(self.places, raw, strict=True)) | dict.fromkeys(self.inkless, 1.0)
            raw = [
                0.0 if max(near.get(p - 1, 0.0), near.get(p + 1, 0.0)) > CONFIRMS else e
                for p, e in zip(self.places, raw, strict=True)
            ]
        return [round(e, 4) for e in raw]

    @property
    def outlier(self) -> float | None:
        """Worst glyph's `excess`; None under MIN_GLYPHS glyphs (unless a median was
        `lent`) or in a font unlike the references (median over MAX_MEDIAN)."""
        median = self.median
        short = len(self.distances) < MIN_GLYPHS and self.lent is None
        if not self.distances or short or median is None or median > MAX_MEDIAN:
            return None
        return max(self.excess)

    def confirmed(self) -> set[tuple[int, str]]:
        """(place, character) of each glyph whose shape is its character's, as sure as
        the line's other glyphs are (`excess` at most `CONFIRMS`); none on a line the
        check does not score."""
        if self.outlier is None:
            return set()
        return {
            (place, char)
            for place, char, e in zip(self.places, self.chars, self.excess, strict=True)
            if e <= CONFIRMS
        }

    @property
    def height(self) -> float | None:
        """How far the flat capital (`FLAT`) whose height differs most from the line's
        other flat capitals differs, as a share of theirs (median); None with under
        two others whose shapes fit (`CONFIRMS`: a glyph cut wrong has a wrong height
        too). Letters alike in shape can differ in height: an l drawn for an I in
        capitals is 9 % taller in Noto Sans, 4-7 % in DejaVu, Liberation and Aileron.
        A capital is judged while its shape lies within `PROPORTIONED` of the line's
        median: an l drawn for an I is a bar of another aspect, 0.08 from an I's
        references in Noto Sans, just beyond `CONFIRMS`, so requiring it to fit as
        the median's glyphs do left it unjudged. None on a line not scored (`outlier`):
        its cuts went wrong, and so do its heights."""
        if self.outlier is None:
            return None
        median = self.median or 0.0
        flat = [
            (h, d - median)
            for c, h, d in zip(self.chars, self.heights, self.distances, strict=True)
            if c in FLAT and d - median <= PROPORTIONED
        ]
        out = []
        for k, (h, _) in enumerate(flat):
            others = [o for j, (o, e) in enumerate(flat) if j != k and e <= CONFIRMS]
            if len(others) >= MIN_GLYPHS - 1:
                out.append(abs(h / float(np.median(others)) - 1.0))
        return round(max(out), 4) if out else None

    def _fits(self) -> dict[int, bool]:
        """By place: does the glyph's shape fit its character as surely as the line's
        other glyphs do (`own_excess` at most `CONFIRMS`)?"""
        return {p: e <= CONFIRMS for p, e in zip(self.places, self.own_excess, strict=True)}

    def _framed(self) -> set[int]:
        """Places whose neighbours' shapes fit (a place with no scored glyph counts as
        fitting): a cut that goes wrong takes ink from one glyph into the next, so a
        glyph beside one that does not fit is not judged alone."""
        fits = self._fits()
        return {p for p in self.places if fits.get(p - 1, True) and fits.get(p + 1, True)}

    def _width_shares(self, kinds: set[str]) -> tuple[dict[int, float], dict[int, float]]:
        """Each glyph of `kinds`' width over its height as a share of its character's in
        the references (log scale), by place: of the glyphs whose neighbours' shapes fit
        (`CONFIRMS`: a cut that goes wrong takes width from one glyph to the next),
        which may be judged; and of the glyphs whose own shape fits, which set medians."""
        fits = self._fits()
        shares = {}
        for place, char, w, h in zip(
            self.places, self.chars, self.widths, self.heights, strict=True
        ):
            aspect = reference_aspect(char) if char in kinds else None
            if h > 0 and aspect and aspect >= WIDE_ENOUGH:
                shares[place] = float(np.log(w / h / aspect))
        framed = self._framed()
        judged = {p: v for p, v in shares.items() if p in framed}
        return judged, {p: v for p, v in shares.items() if fits[p]}

    def digit_widths(self) -> list[float]:
        """The width shares of the line's digits that set medians (`_width_shares`),
        lent to the poster's other lines (`lend_medians`)."""
        if len(self.widths) != len(self.chars) or self.outlier is None:
            return []
        return list(self._width_shares(STEADY_DIGITS)[1].values())

    @property
    def width(self) -> float | None:
        """How far the digit whose proportions differ most from its character's, against
        the poster's other digits, differs (on a log scale: 0.29 is a third wider);
        None with no digit to judge. An O drawn for a 0 reads as 0 and has a 0's shape
        once blurred and stretched, and is a third wider than a 0 in every sans face
        measured (1.30-1.47 in Noto, Aileron, DejaVu and Liberation, their bold, narrow
        and oblique cuts; the other digits within 0.07 of each other, 4 within 0.15).
        Each digit's share of its character's width (`_width_shares`) is compared with
        the median share of the line's other digits, the font's own width; with under
        two, of the poster's (`lent_digits`); with under two of those either (SAVE 20%
        alone), of the line's letters. Letters are not judged: geometric faces (Poppins)
        draw C, G and a a quarter wider and E, L narrower than the references (judged,
        they rejected 3 of 4 good Poppins posters), while a digit's width is steady
        across sans faces; as a measure they are the last resort (a good 0 lay 0.2-0.27
        from its line's letters in Raleway, 0.26 in Liberation Serif). A digit whose
        shape lies further than `PROPORTIONED` from the line's median is not judged: its
        shape is the shape rule's business, and a glyph cut wrong has a wrong width
        too."""
        if len(self.widths) != len(self.chars) or self.outlier is None:
            return None
        judged, steady = self._width_shares(STEADY_DIGITS)
        letters = list(self._width_shares(STEADY_LETTERS)[1].values())
        excess = dict(zip(self.places, self.own_excess, strict=True))
        out = []
        for place, share in judged.items():
            if excess[place] > PROPORTIONED:
                continue
            pool = [v for p, v in steady.items() if p != place]
            if len(pool) < MIN_GLYPHS - 1:
                pool += self.lent_digits
            if len(pool) < MIN_GLYPHS - 1:
                pool = letters
            if len(pool) >= MIN_GLYPHS - 1:
                out.append(abs(share - float(np.median(pool))))
        return round(max(out), 4) if out else None

    @property
    def swap(self) -> float | None:
        """How much nearer the digit most like a letter lies to the nearest letter's
        references than to its own character's: a letter drawn for a digit (l for 1,
        Z for 2, b for 6, q for 9) reads as the digit, and its shape is the letter's.
        Over 75 cuts of 20 sans families (none a reference; their own glyphs drawn
        alone) a good digit other than 0 lay at most 0.10 nearer a letter (Rubik
        Italic's 6 to D), but for Poppins Italic's 1, a bar 0.17 nearer an I; an l for
        a 1 0.09-0.36 (median 0.19), an I for a 1 0.04-0.37 (0.17). As for the shape,
        a digit drawn like its twin on the poster (`twins`) is the font's design (the
        1s of a Poppins or an Oswald date lie 0.15-0.22 from a 1's references, alike
        each other: 0.00-0.05 apart), while an l drawn for one of them is unlike the
        others. Only a digit whose neighbours' shapes fit is judged (a cut that takes
        a 1's flag into its neighbour leaves a bar), and none beside a slash
        (`SLASHES`); None with no such digit or on a line not scored."""
        if len(self.letterlike) != len(self.chars) or self.outlier is None:
            return None
        twins = self.twins or [None] * len(self.distances)
        beside, framed = self._beside_slashes(), self._framed()
        out = [
            d - near if twin is None else min(d - near, twin)
            for i, (p, d, near, twin) in enumerate(
                zip(self.places, self.distances, self.letterlike, twins, strict=True)
            )
            if near is not None and i not in beside and p in framed
        ]
        return round(max(out), 4) if out else None

    def _beside_slashes(self) -> set[int]:
        """Indexes (into `chars`) of the glyphs next to a slash."""
        near = {p + d for p in self.slashes for d in (-1, 1)}
        return {i for i, p in enumerate(self.places) if p in near}

    @property
    def repeated(self) -> float | None:
        """The largest `excess` of a glyph whose character the line holds again, where
        it is unlike all of them too (the distance to the nearest, if less): the line's
        other glyphs of that character show the font's design, so a glyph that fits
        neither them nor the references is damaged, whatever the font. A glyph beside
        a slash (`SLASHES`) is neither judged nor a twin: its cell can gain or lose
        ink. None where no character repeats on the line (or the line is not scored)."""
        if self.outlier is None or len(self.inks) != len(self.chars):
            return None
        beside = self._beside_slashes()
        out = []
        for i, (char, e) in enumerate(zip(self.chars, self.excess, strict=True)):
            same = [j for j, c in enumerate(self.chars) if c == char and j not in beside | {i}]
            if same and i not in beside:
                unlike = min(1.0 - float((self.inks[i] * self.inks[j]).sum()) for j in same)
                out.append(min(e, unlike))
        return round(max(out), 4) if out else None

    @property
    def worst(self) -> str:
        return self.chars[int(np.argmax(self.excess))] if self.distances else ""

    def summary(self) -> dict[str, object]:
        """What a line's record keeps of the check."""
        return {
            "glyphs": self.chars,
            "distances": self.distances,
            "twins": self.twins,
            "median": self.median,
            "outlier": self.outlier,
            "worst": self.worst,
            "height": self.height,
            "width": self.width,
            "swap": self.swap,
            "repeated": self.repeated,
        }


def match_twins(checks: list[ShapeCheck]) -> None:
    """Fill each check's `twins`: for every glyph, the distance to the nearest other
    glyph of the same character (case folded) among `checks` (one poster's lines of one
    script)."""
    glyphs: dict[str, list[tuple[int, int]]] = {}
    for i, check in enumerate(checks):
        check.twins = [None] * len(check.chars)
        for k, char in enumerate(check.chars):
            glyphs.setdefault(char.casefold(), []).append((i, k))
    for places in glyphs.values():
        for i, k in places:
            others = [
                1.0 - float((checks[i].inks[k] * checks[j].inks[m]).sum())
                for j, m in places
                if (j, m) != (i, k)
            ]
            if others:
                checks[i].twins[k] = round(min(others), 4)


def lend_medians(checks: list[ShapeCheck]) -> None:
    """A line too short for a median of its own (under `MIN_GLYPHS` glyphs) takes the
    median of the poster's other lines of the script (`checks`), where they hold enough
    glyphs: the poster's font is mostly one, and a price such as ¥29起 is where a wrong
    or damaged digit costs most. Each line is lent the other lines' digit widths too
    (`ShapeCheck.lent_digits`)."""
    for check in checks:
        if 0 < len(check.distances) < MIN_GLYPHS:
            pool = [
                d for other in checks if len(other.distances) >= MIN_GLYPHS for d in other.distances
            ]
            check.lent = round(float(np.median(pool)), 4) if len(pool) >= MIN_GLYPHS else None
    widths = [check.digit_widths() for check in checks]
    for k, check in enumerate(checks):
        check.lent_digits = [v for j, own in enumerate(widths) if j != k for v in own]


def _drop_long_parts(mask: np.ndarray, longest: float) -> np.ndarray:
    """Ink in connected parts wider or taller than `longest` is not a glyph's: the edge
    of a label behind the line, a rule, a frame that a levelled crop takes in."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask)
    keep = np.ones(labels.max() + 1, bool)
    for index, part in enumerate(ndimage.find_objects(labels), start=1):
        if part is not None:
            rows, cols = part
            keep[index] = max(rows.stop - rows.start, cols.stop - cols.start) <= longest
    keep[0] = False
    return keep[labels]


def _empty_runs(profile: np.ndarray) -> list[tuple[int, int]]:
    """(first, past the last) column of each run of empty columns."""
    empty = np.concatenate([[0], (profile == 0).astype(np.int8), [0]])
    starts = np.nonzero(np.diff(empty) == 1)[0]
    ends = np.nonzero(np.diff(empty) == -1)[0]
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _thinnest(profile: np.ndarray) -> int:
    """The middle of the widest run of empty columns, else the column of least ink."""
    runs = _empty_runs(profile)
    if not runs:
        return int(np.argmin(profile))
    start, end = max(runs, key=lambda run: run[1] - run[0])
    return (start + end) // 2


def _thinnest_between(profile: np.ndarray, centres: list[float]) -> list[int]:
    """Between two neighbours' places, the column of thinnest ink in the middle 70 % of
    the gap (the recogniser's place of a glyph is biased to one side; the thinnest ink
    between two places is not)."""
    width = len(profile)
    cuts = []
    for a, b in pairwise(centres):
        lo = min(width - 1, max(0, int(a + (b - a) * 0.15)))
        hi = min(width - 1, max(lo, int(np.ceil(a + (b - a) * 0.85))))
        cuts.append(_thinnest(profile[lo : hi + 1]) + lo)
    return cuts


def window_cells(mask: np.ndarray, centres: list[float]) -> list[tuple[int, int]]:
    """Each glyph's columns, cut between two neighbours at `_thinnest_between`; the
    first and the last glyph run to the line's ends."""
    cuts = _thinnest_between(mask.sum(axis=0), centres)
    return list(pairwise([0, *cuts, mask.shape[1]]))


def cells(mask: np.ndarray, centres: list[float]) -> list[tuple[int, int]]:
    """Each glyph's columns; the first and the last glyph run to the line's ends.

    Between two neighbours the cut is either where the ink is thinnest in the middle
    70 % of the gap between their places, or a run of empty columns (the space between
    two glyphs that do not touch), preferred by `SNAP` advances: the recogniser's
    place of a glyph is the frame that fired, up to a frame (a digit's width) off, so
    the thinnest ink between two places can lie inside a glyph while the space beside
    it is the true cut. The cuts are chosen together, left to right (`_choose`)."""
    profile = mask.sum(axis=0)
    width = mask.shape[1]
    advance = float(np.median(np.diff(centres))) if len(centres) > 1 else float(width)
    thinnest = _thinnest_between(profile, centres)
    wanted = [(a + b) / 2 for a, b in pairwise(centres)]
    ink = np.nonzero(profile)[0]
    spaces = []
    if len(ink):
        inside = _empty_runs(profile[ink[0] : ink[-1] + 1])
        spaces = [int(ink[0] + (s + e) // 2) for s, e in inside]
    options = dict.fromkeys(spaces, 0.0)
    for x in thinnest:
        options.setdefault(x, SNAP * advance)
    cuts = _choose(sorted(options.items()), wanted)
    return list(pairwise([0, *cuts, width]))


LEANS = (0.1, 0.15, 0.2, 0.25, 0.3)
"""Slants an italic or oblique line may lean by (x right per pixel up): 6-17 degrees."""
OPENS = 1.25
"""A slant is taken back when it opens this many times the empty columns between the
line's glyphs that upright columns leave, and two more."""


def _shear(mask: np.ndarray, lean: float) -> tuple[np.ndarray, int]:
    """`mask` with each row moved left by `lean` per pixel above the middle row (right
    below it), so a glyph leaning by `lean` stands upright; and how far right the
    middle row moved (the canvas widens to keep every row)."""
    h, w = mask.shape
    moves = np.round(lean * (np.arange(h) - (h - 1) / 2)).astype(int)
    shift = int(-moves.min())
    out = np.zeros((h, w + int(moves.max()) + shift), bool)
    ys, xs = np.nonzero(mask)
    out[ys, xs + moves[ys] + shift] = True
    return out, shift


def _gaps(mask: np.ndarray) -> int:
    """Empty columns between the first and the last column of ink."""
    ink = np.nonzero(mask.any(axis=0))[0]
    return int(ink[-1] - ink[0] + 1 - len(ink)) if len(ink) else 0


def upright(mask: np.ndarray, centres: list[float]) -> tuple[np.ndarray, list[float]]:
    """The line's ink stood upright where it leans (an italic or oblique face), with its
    glyphs' places moved alike: glyphs are cut by columns, and in a leaning line the top
    of one glyph stands over the foot of the next (an oblique r's arm over the n beside
    it: the n, cut by columns, took the arm and lay 0.75 from its character). A slant
    is taken back only where it opens clearly more empty columns between glyphs than
    upright columns do (`OPENS`), so an upright line is cut as before."""
    best, found = mask, centres
    most = _gaps(mask) * OPENS + 2
    for lean in LEANS:
        sheared, shift = _shear(mask, lean)
        gaps = _gaps(sheared)
        if gaps > most:
            most, best, found = gaps, sheared, [c + shift for c in centres]
    return best, found


def _choose(options: list[tuple[int, float]], wanted: list[float]) -> list[int]:
    """One cut per wanted place, in order, each from `options` (column, extra cost) and
    right of the one before, at the least total distance plus cost (dynamic
    programming); with fewer options than cuts, the wanted places themselves."""
    if len(options) < len(wanted):
        return [round(w) for w in wanted]
    xs = np.array([x for x, _ in options], np.float64)
    extra = np.array([c for _, c in options], np.float64)
    total = np.abs(xs - wanted[0]) + extra
    links = []
    for w in wanted[1:]:
        before = np.zeros(len(xs), int)  # the best option left of each option
        for j in range(2, len(xs)):
            before[j] = j - 1 if total[j - 1] < total[before[j - 1]] else before[j - 1]
        reach = np.concatenate([[np.inf], total[before[1:]]])
        total = reach + np.abs(xs - w) + extra
        links.append(before)
    j = int(np.argmin(total))
    picks = [j]
    for before in reversed(links):
        j = int(before[j])
        picks.append(j)
    return [int(xs[k]) for k in reversed(picks)]


class LineInk:
    """A line's ink, split into its connected parts once: the second cut (`_recut`)
    tries dozens of cuts of one line, and each only counts columns (`glyphs`)."""

    def __init__(self, mask: np.ndarray) -> None:
        from scipy import ndimage

        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        specks = sizes < SPECK * float(np.median(sizes[1:])) if count else sizes < 0
        specks[0] = True
        self.ys, self.xs = np.nonzero(~specks[labels])
        self.part = labels[self.ys, self.xs]
        self.parts = count + 1

    def glyphs(
        self, spans: list[tuple[int, int]], places: Iterable[int] | None = None
    ) -> dict[int, np.ndarray]:
        """Each glyph's ink (of `places`, else all), cut to its extent: the connected
        parts of the line's ink, each given whole to the glyph whose columns (`spans`)
        hold `WHOLE` of it or more, so a letter that leans or overhangs its neighbour's
        columns (the bar of an italic T over the i beside it) stays whole and out of the
        neighbour; a part shared more evenly (two glyphs that touch) is cut at the
        columns. A part under `SPECK` of the median part is grain of the ground or a
        fleck of the pattern behind, no glyph's."""
        n = len(spans)
        column_cell = np.searchsorted([x1 for _, x1 in spans], self.xs, side="right")
        column_cell = np.minimum(column_cell, n - 1)
        counts = np.bincount(self.part * n + column_cell, minlength=self.parts * n)
        counts = counts.reshape(self.parts, n)
        whole = counts.max(axis=1) >= WHOLE * np.maximum(1, counts.sum(axis=1))
        cell = np.where(whole[self.part], counts.argmax(axis=1)[self.part], column_cell)
        inks = {}
        for k in range(n) if places is None else places:
            ys, xs = self.ys[cell == k], self.xs[cell == k]
            if not len(xs):
                inks[k] = np.zeros((1, 1), bool)
                continue
            ink = np.zeros((ys.max() - ys.min() + 1, xs.max() - xs.min() + 1), bool)
            ink[ys - ys.min(), xs - xs.min()] = True
            inks[k] = ink
        return inks


@dataclass(frozen=True)
class Scored:
    """One glyph's ink under one cut: its distance to the nearest reference, its
    normalised map (for twins) and its pixels (for its height and width)."""

    distance: float
    map: np.ndarray
    ink: np.ndarray


def _score(ink: np.ndarray, char: str) -> Scored | None:
    how = CJK if is_cjk(char) else LATIN
    v = _normalised(ink, how)
    if v is None:
        return None
    distance = round(1.0 - float((references(char) @ v.ravel()).max()), 4)
    return Scored(distance, v, ink)


JOINS = 4
"""Thinnest joins of ink tried as cuts around a glyph that stands out (`_recut`)."""


def _cut_options(profile: np.ndarray, a: float, b: float, now: int) -> list[int]:
    """Columns where the cut between two glyphs placed at `a` and `b` may go: the one
    taken (`now`), the middle of each run of empty columns and the `JOINS` thinnest
    joins of ink, from half a gap before `a` to half a gap after `b` (a place is the
    recogniser's frame, about half a Latin letter wide: a narrow glyph's place can lie
    in its neighbour, a line's last place beyond its ink)."""
    lo = max(0, int(a - (b - a) * 0.5))
    hi = min(len(profile) - 1, max(lo, int(np.ceil(b + (b - a) * 0.5))))
    window = profile[lo : hi + 1]
    options = {now}
    options.update(lo + (s + e) // 2 for s, e in _empty_runs(window))
    # the thinnest joins between two glyphs' ink: local minima, one per plateau
    low = [
        k for k in range(1, len(window) - 1) if 0 < window[k] <= min(window[k - 1], window[k + 1])
    ]
    plateaus: list[list[int]] = []
    for k in low:
        if plateaus and k == plateaus[-1][-1] + 1 and window[k] == window[plateaus[-1][-1]]:
            plateaus[-1].append(k)
        else:
            plateaus.append([k])
    plateaus.sort(key=lambda run: int(window[run[0]]))
    options.update(int(lo + run[len(run) // 2]) for run in plateaus[:JOINS])
    return sorted(options)


def _recut(
    ink: LineInk,
    profile: np.ndarray,
    centres: list[float],
    spans: list[tuple[int, int]],
    glyphs: list[str],
    scripts: dict[int, str],
    best: dict[int, Scored],
) -> None:
    """Where a glyph stands out (over `CONFIRMS` above its script's median, or no ink),
    move the cuts on either side of it among `_cut_options`; the pair that fits it and
    its two neighbours best (the least worst excess of the three), if better, scores
    each of the three where it fits that glyph better (as each glyph takes the better
    of two cuts; a glyph no cut gave ink, where it fits):
    a glyph that overhangs or tucks under its neighbour (an f's hook, a kerned AV, a
    4 beside a $) is cut wrong by columns between places, while damage fits no cut
    (a wrong half or an added stroke stays in the glyph whichever way it is cut).
    `profile` is the line's ink per column; `best` is updated in place."""
    medians = {
        script: float(np.median([best[p].distance for p in best if scripts[p] == script]))
        for script in set(scripts.values())
        if any(scripts[p] == script for p in best)
    }

    def excess(place: int, scored: Scored | None) -> float:
        if scored is None:
            return 1.0
        return scored.distance - medians.get(scripts[place], 0.0)

    last = len(spans) - 1
    for place in sorted(scripts):
        if place in best and excess(place, best[place]) <= CONFIRMS:
            continue
        trio = [p for p in (place - 1, place, place + 1) if p in scripts]
        worst = max(excess(p, best.get(p)) for p in trio)
        lefts = (
            [spans[place][0]]
            if place == 0
            else _cut_options(profile, centres[place - 1], centres[place], spans[place][0])
        )
        rights = (
            [spans[place][1]]
            if place == last
            else _cut_options(profile, centres[place], centres[place + 1], spans[place][1])
        )
        found: dict[int, Scored | None] | None = None
        for left in lefts:
            for right in rights:
                inside = (place == 0 or spans[place - 1][0] < left) and (
                    place == last or right < spans[place + 1][1]
                )
                if right <= left or not inside:
                    continue
                trial = list(spans)
                trial[place] = (left, right)
                if place > 0:
                    trial[place - 1] = (trial[place - 1][0], left)
                if place < last:
                    trial[place + 1] = (right, trial[place + 1][1])
                inks = ink.glyphs(trial, trio)
                scored = {p: _score(inks[p], glyphs[p]) for p in trio}
                fit = max(excess(p, s) for p, s in scored.items())
                if fit < worst:
                    worst, found = fit, scored
        for p, scored in (found or {}).items():
            if scored is None:
                continue
            better = (
                scored.distance < best[p].distance if p in best else excess(p, scored) <= CONFIRMS
            )
            if better:
                best[p] = scored


def check_shapes(
    crop: np.ndarray, text: str, centres: list[float], pad: int
) -> dict[str, ShapeCheck]:
    """Score the glyphs of `text` (read from `crop`; `centres` has one x per glyph,
    white space excluded) against the reference fonts: its CJK glyphs ("cjk") and its
    Latin letters and digits ("latin") apart, each against its own line median. The
    crop's `pad` around the detected line box holds ground only: specks of a texture
    there are not ink."""
    checks = {"cjk": ShapeCheck("", []), "latin": ShapeCheck("", [], alone=True)}
    glyphs = [c for c in text if not c.isspace()]
    if len(glyphs) != len(centres) or len(centres) < 2:
        return checks
    advance = float(np.median(np.diff(centres)))
    # two glyphs whose strokes touch span two advances: they stay
    mask = _drop_long_parts(ink_mask(crop, pad), 2.2 * max(4.0, advance))
    if not mask.any():
        return checks
    mask, centres = upright(mask, centres)
    # Two cuts err in different places (the window between two places can miss the
    # space beside a narrow glyph; the space nearest a place can be a glyph's own gap):
    # each glyph is scored on the cut that fits it better. Damage fits neither.
    spans = cells(mask, centres)
    ink = LineInk(mask)
    cuts = [ink.glyphs(window_cells(mask, centres)), ink.glyphs(spans)]
    scripts = {
        place: "cjk" if is_cjk(char) else "latin"
        for place, char in enumerate(glyphs)
        if (is_cjk(char) or is_latin(char)) and len(references(char))
    }
    best: dict[int, Scored] = {}
    for place in scripts:
        scored = [s for inks in cuts if (s := _score(inks[place], glyphs[place]))]
        if scored:
            best[place] = min(scored, key=lambda t: t.distance)
    _recut(ink, mask.sum(axis=0), centres, spans, glyphs, scripts, best)
    for place in sorted(set(scripts) - set(best)):
        checks[scripts[place]].inkless.append(place)
    checks["latin"].slashes = [p for p, c in enumerate(glyphs) if c in SLASHES]
    for place, scored in sorted(best.items()):
        check = checks[scripts[place]]
        check.chars += glyphs[place]
        check.places.append(place)
        rows = np.nonzero(scored.ink.any(axis=1))[0]
        columns = np.nonzero(scored.ink.any(axis=0))[0]
        check.heights.append(float(rows[-1] - rows[0] + 1))
        check.widths.append(float(columns[-1] - columns[0] + 1))
        check.distances.append(scored.distance)
        check.inks.append(scored.map)
        lettered = glyphs[place].isdigit() and glyphs[place] not in ROUND_DIGITS
        near = 1.0 - float((letters() @ scored.map.ravel()).max()) if lettered else None
        check.letterlike.append(None if near is None else round(near, 4))
    return checks
