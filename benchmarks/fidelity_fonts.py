"""Text fidelity on posters drawn by other code, in fonts the references do not include.

Compares train.yaml's text verdicts with what was drawn, on posters this file draws
with Pillow alone (not the procedural renderer, whose Noto Sans CJK TC the glyph check
knows): four lines each, at the cluster's 1328 and 1664 px, plain or lightly grained
grounds, good and with one glyph damaged (`text_faults.damage_glyph`); en posters also
with an O set for a 0 and with an l for a 1. A font is a glob of files taken glyph by
glyph, the first file that holds a character drawing it, so a font split into subset
files (fontsource's woff files from npm) works as one. en takes `--font` (default: the
DejaVu and Liberation sans cuts where the system has them, Debian fonts-dejavu-core and
fonts-liberation; fontsource's Latin files from npm add geometric and humanist faces,
e.g. Poppins, Raleway, Roboto), zh `--zh-font` (no default: e.g. Noto Sans SC, which
draws the mainland's regional forms). Prints, per font and over all, precision (good
posters kept) and recall of the damaged glyph, of O for 0 and of l for 1 (share
rejected), and stores each line's shape checks. What was drawn only grades.

    python benchmarks/fidelity_fonts.py [--quick] [--json out.json] [--font GLOB ...]
        [--zh-font GLOB ...] [--seed S]
"""

from __future__ import annotations

import io
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, Figure, Result, main

SYSTEM_FONTS = "/usr/share/fonts/truetype"
EN_FONTS = (
    "dejavu/DejaVuSans.ttf",
    "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSans-Oblique.ttf",
    "dejavu/DejaVuSansCondensed.ttf",
    "liberation/LiberationSans-Regular.ttf",
    "liberation/LiberationSans-Bold.ttf",
    "liberation/LiberationSans-Italic.ttf",
    "liberation/LiberationSansNarrow-Regular.ttf",
)
EN_POSTERS = (
    ("GRAND OPENING SALE", "Only 20 seats left", "Fresh bread daily", "FROM $12.99"),
    ("SUMMER MUSIC NIGHT", "Live at City Hall", "Doors open 7:30 PM", "MAY 11, 2026"),
    ("Morning Yoga Class", "BOOK YOUR SPOT TODAY", "Join us every Monday", "SAVE 20%"),
    ("Weekend Farmers Market", "LOCAL HONEY AND JAM", "Open from 8 to 2", "2026/10/18"),
)
"""Copy as posters of other code carry it: capitals and mixed case, prices, dates."""
SIZES = (1328, 1664)
ZH_POSTERS = 12
"""zh posters per font: their copy comes from the recipe's libraries (`zh_posters`)."""
SWAPS = {"o_for_0": ("0", "O"), "l_for_1": ("1", "l")}
"""en look-alikes the recogniser reads through: (digit, letter drawn for it), set once
on a poster whose copy holds the digit."""


class Face:
    """A font as a glob of files, each character drawn by the first file holding it."""

    def __init__(self, pattern: str) -> None:
        from fontTools.ttLib import TTFont

        self.name = Path(pattern).name
        pattern_path = Path(pattern)
        self.files = sorted(str(p) for p in pattern_path.parent.glob(pattern_path.name))
        self.covers = [set(TTFont(f, lazy=True, fontNumber=0).getBestCmap()) for f in self.files]
        self.sizes: dict[tuple[str, int], Any] = {}

    def font(self, char: str, size: int) -> Any:
        from PIL import ImageFont

        path = next(
            (f for f, c in zip(self.files, self.covers, strict=True) if ord(char) in c), None
        )
        if path is None:
            raise ValueError(f"{self.name}: no file holds {char!r}")
        if (path, size) not in self.sizes:
            self.sizes[path, size] = ImageFont.truetype(path, size)
        return self.sizes[path, size]

    def width(self, text: str, size: int) -> float:
        return sum(self.font(c, size).getlength(c) for c in text)


def poster(face: Face, lines: list[str], size: int, rng: random.Random, damage: bool) -> Any:
    """The poster, and (line, char, how) of the glyph damaged, if one was."""
    from PIL import Image, ImageDraw

    from datapipe.backends.procedural.text_faults import damage_glyph, plain_ink

    dark = rng.random() < 0.5
    ground = tuple(rng.randrange(20, 90) if dark else rng.randrange(170, 250) for _ in range(3))
    ink = (250, 250, 240, 255) if dark else (20, 20, 30, 255)
    grain = np.random.default_rng(rng.randrange(1 << 30)).integers(-12, 12, (size, size, 1))
    image = Image.fromarray(
        np.clip(np.full((size, size, 3), ground) + grain, 0, 255).astype("uint8")
    )
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    target = rng.randrange(len(lines)) if damage else -1
    y, damaged = int(size * 0.1), None
    for i, text in enumerate(lines):
        px = int(size * (0.075 if i == 0 else 0.05))
        while face.width(text, px) > size * 0.85:
            px -= 2
        x = (size - face.width(text, px)) / 2
        spots = [j for j, c in enumerate(text) if c.isalnum() and c not in "iIl1"]
        at = rng.choice(spots) if i == target and spots else None
        for j, char in enumerate(text):
            font = face.font(char, px)
            draw.text((x, y), char, font=font, fill=ink)
            if j == at:
                left, top, right, bottom = font.getbbox(char)
                box = (int(x + left), int(y + top), int(x + right) + 1, int(y + bottom) + 1)
                # as the renderer does: a mirror respects the plain glyph's symmetry
                how = damage_glyph(layer, box, rng, plain=plain_ink(char, font))
                damaged = (i, char, how) if how else None
            x += font.getlength(char)
        y += int(px * 1.9) + int(size * 0.04)
    image.paste(layer, (0, 0), layer)
    return image, damaged


def shape_brief(line: dict[str, Any]) -> dict[str, Any]:
    """A line's shape checks, without twins: what explains a verdict."""
    keep = (
        "glyphs",
        "distances",
        "median",
        "outlier",
        "worst",
        "height",
        "width",
        "swap",
        "repeated",
    )
    return {
        key: {k: line[key].get(k) for k in keep}
        for key in ("shape", "shape_latin")
        if line.get(key) and line[key].get("outlier") is not None
    }


def zh_posters(count: int, seed: int) -> list[list[str]]:
    """The copy of the first `count` zh posters the recipe plans (its entity and style
    libraries): what the cluster asks for."""
    from fidelity import load, specs_by_language

    train = ROOT / "pipelines" / "train.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        specs = specs_by_language(load(Path(tmp), train, seed), count)["zh"]
    return [[line.text for line in spec.copy] for spec in specs]


def run(
    quick: bool, font: list[str] | None = None, zh_font: list[str] | None = None, seed: int = 3
) -> Result:
    from datapipe.loading import load_recipe
    from datapipe.scoring import Scorer
    from datapipe.stages.filter import evaluate
    from datapipe.stages.ocr import OcrStage
    from datapipe.stages.registry import build_stage

    en = font or [f"{SYSTEM_FONTS}/{name}" for name in EN_FONTS]
    faces = [(Face(p), "en") for p in en] + [(Face(p), "zh") for p in zh_font or []]
    faces = [(face, language) for face, language in faces if face.files]
    result = Result(
        "fidelity_fonts",
        "train.yaml's text rules on posters drawn by Pillow in fonts the references do not "
        "include: good kept; damaged glyph, O for 0 and l for 1 rejected",
    )
    if not faces:
        result.skipped = "no font found: pass --font or --zh-font globs"
        return result
    faces = faces[:2] if quick else faces
    per_face = {"en": 1, "zh": 1} if quick else {"en": len(EN_POSTERS), "zh": ZH_POSTERS}
    copy = {"en": [list(p) for p in EN_POSTERS], "zh": zh_posters(per_face["zh"], seed)}
    train = load_recipe(ROOT / "pipelines" / "train.yaml")
    stage = build_stage(OcrStage, train)
    stage.setup()
    rules = {k: v for k, v in train.recipe.thresholds.items() if k.startswith("text_")}
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for face, language in faces:
        for k, lines in enumerate(copy[language][: per_face[language]]):
            kinds = ["good", "malformed_glyph"]
            kinds += [name for name, (digit, _) in SWAPS.items() if any(digit in t for t in lines)]
            for kind in kinds if language == "en" else kinds[:2]:
                drawn = list(lines)
                if kind in SWAPS:
                    digit, letter = SWAPS[kind]
                    j = next(i for i, t in enumerate(drawn) if digit in t)
                    drawn[j] = drawn[j].replace(digit, letter, 1)
                size = SIZES[k % len(SIZES)]
                image, damaged = poster(face, drawn, size, rng, kind == "malformed_glyph")
                if kind == "malformed_glyph" and damaged is None:
                    continue  # no damage changed the glyph: nothing to grade
                data = io.BytesIO()
                image.save(data, "PNG")
                candidate = Scorer.candidate(data.getvalue(), lines, None, language)
                stage.annotate(candidate, image)
                verdict = evaluate(candidate.scores, rules, image_failed=False)
                rows.append(
                    {
                        "face": face.name,
                        "language": language,
                        "kind": kind,
                        "kept": verdict.keep,
                        "reasons": list(verdict.reasons),
                        "damaged": damaged,
                        "scores": {
                            k: v for k, v in candidate.scores.items() if k.startswith("ocr.glyph")
                        },
                        "lines": [
                            {"read": line.get("read"), **shape_brief(line)}
                            for line in candidate.details["ocr"]["lines"]
                        ],
                    }
                )
    stage.teardown()
    groups = [(face.name, [r for r in rows if r["face"] == face.name]) for face, _ in faces]
    for name, group in [*groups, ("all fonts", rows)]:
        for kind, label, target in (
            ("good", "precision (good kept)", ">= 0.95"),
            ("malformed_glyph", "recall malformed_glyph", ">= 0.9"),
            ("o_for_0", "recall O for 0", ">= 0.9"),
            ("l_for_1", "recall l for 1", ">= 0.9"),
        ):
            chosen = [r for r in group if r["kind"] == kind]
            if not chosen:
                continue
            share = sum(r["kept"] == (kind == "good") for r in chosen) / len(chosen)
            result.figures.append(
                Figure(f"{name}: {label}", share, target, note=f"n={len(chosen)}")
            )
    result.raw = {"seed": seed, "fonts": [f.files[0] for f, _ in faces], "posters": rows}
    return result


OPTIONS = {
    "--font": {"action": "append", "default": None, "help": "en font glob (repeat)"},
    "--zh-font": {"action": "append", "default": None, "help": "zh font glob (repeat)"},
    "--seed": {"type": int, "default": 3, "help": "draws grounds, damage and zh copy"},
}

if __name__ == "__main__":
    sys.exit(main(run, __doc__, OPTIONS))
