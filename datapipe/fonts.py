"""The CJK-capable fonts the procedural renderer draws with, and the Latin faces the
glyph shape check compares letters with.

They come from PyPI wheels (Noto Sans CJK, Bold and Regular) so that a fresh machine
renders Chinese copy with `pip install` alone, no system font package needed. The
Latin designs besides Noto's are the one Pillow carries (`pillow_sans`) and Source Sans
Pro (`LATIN_FACES`, a wheel too), whose stylistic alternates hold the other common
forms of a, g, I and l.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from PIL import ImageFont, features

from datapipe.errors import MissingDependencyError

_SSP = "font-source-sans-pro"
_PACKAGES = {
    "bold": ("cvttf_NotoSansCJK_Bold", "NotoSansCJKtc-Bold.otf", "cvttf-NotoSansCJK-Bold"),
    "regular": (
        "cvttf_NotoSansCJK_Regular",
        "NotoSansCJKtc-Regular.otf",
        "cvttf-NotoSansCJK-Regular",
    ),
    "source-sans": ("font_source_sans_pro", "files/SourceSansPro-Regular.otf", _SSP),
    "source-sans-bold": ("font_source_sans_pro", "files/SourceSansPro-Bold.otf", _SSP),
}
LATIN_FACES = ("source-sans", "source-sans-bold")
"""Faces that only the glyph shape check draws (Latin letters and digits)."""


@lru_cache(maxsize=8)
def font_path(weight: str) -> Path:
    """The file of a face: a CJK weight ("bold", "regular") or one of `LATIN_FACES`."""
    package, filename, dist = _PACKAGES[weight]
    try:
        path = Path(str(resources.files(package) / filename))
    except ModuleNotFoundError:
        raise MissingDependencyError(
            f"the {weight} font package {dist} is not installed",
            fix=f"pip install {dist} (it is a core dependency: reinstall datapipe)",
        ) from None
    if not path.is_file():
        raise MissingDependencyError(
            f"font file {path} is missing", fix=f"pip install --force-reinstall {dist}"
        )
    return path


@lru_cache(maxsize=512)
def font(weight: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(weight)), size)


@lru_cache(maxsize=1)
def shaping() -> bool:
    """Can Pillow shape text (libraqm, with FriBiDi)? Only shaping reaches the regional
    glyph forms the CJK font holds besides its default ones (`shaped`)."""
    return features.check("raqm")


@lru_cache(maxsize=8)
def shaped(weight: str, size: int) -> ImageFont.FreeTypeFont:
    """The face laid out by libraqm, so that text drawn with `language="zh-Hans"` takes
    the CJK font's simplified-Chinese forms (its `locl` feature: its default forms are
    Traditional Chinese ones, two dots on 辶, 戶 for 户, while zh posters are mostly
    set in faces whose forms are the mainland's), and with `features=["salt"]` a Latin
    face's stylistic alternates."""
    return ImageFont.truetype(str(font_path(weight)), size, layout_engine=ImageFont.Layout.RAQM)


@lru_cache(maxsize=4)
def pillow_sans(size: int) -> ImageFont.FreeTypeFont:
    """Aileron Regular, the sans face inside Pillow (`ImageFont.load_default`): a second
    Latin design beside Noto's (a single-storey g, other widths), so that a letter is
    not judged by one font's design alone."""
    face = ImageFont.load_default(size)
    if not isinstance(face, ImageFont.FreeTypeFont):
        raise MissingDependencyError(
            "Pillow was built without FreeType, so it has no scalable default font",
            fix="pip install --force-reinstall pillow (the PyPI wheels carry FreeType)",
        )
    return face
