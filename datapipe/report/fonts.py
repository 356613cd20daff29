"""The report carries its own fonts: subsets of the Noto Sans CJK files datapipe installs.

A machine without a system CJK font (a fresh server, a colleague's laptop opening the
zipped report) would draw every Chinese instruction, entity and style name as boxes.
So the pages name a font that sits beside them, cut down to the characters the pages
use (tens of KB instead of 16 MB per weight).
"""

from __future__ import annotations

from pathlib import Path

from fontTools import subset

from datapipe.fonts import font_path

FAMILY = "datapipe CJK"
FOLDER = "fonts"
WEIGHTS = {"regular": 400, "bold": 700}


def font_face_css(prefix: str) -> str:
    """@font-face rules for a page `prefix` (`../` per level) below the report root."""
    return "".join(
        f'@font-face{{font-family:"{FAMILY}";font-weight:{weight};font-display:block;'
        f'src:url("{prefix}{FOLDER}/{name}.otf") format("opentype")}}'
        for name, weight in WEIGHTS.items()
    )


def write_fonts(root: Path, text: str) -> list[Path]:
    """Both weights, cut down to the characters of `text`, into root/fonts/."""
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    chars = "".join(sorted(set(text) - set("\n\r\t")))
    written = []
    for name in WEIGHTS:
        options = subset.Options()
        options.layout_features = ["*"]
        options.name_IDs = ["*"]
        options.notdef_outline = True
        font = subset.load_font(str(font_path(name)), options)
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=chars)
        subsetter.subset(font)
        path = folder / f"{name}.otf"
        subset.save_font(font, str(path), options)
        font.close()
        written.append(path)
    return written
