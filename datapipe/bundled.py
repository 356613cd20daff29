"""The recipes, libraries and prompts that ship inside the package.

A source checkout has them at its root (pipelines/, entity_libraries/, style_libraries/,
prompts/); a wheel carries copies under datapipe/bundled/ (setup.py puts them there), so
`pip install datapipe` users can run `datapipe run quickstart` and `datapipe score` with
nothing else. The recipes name their libraries relative to themselves, and both layouts
keep the four folders side by side, so the same recipe file works in either.
"""

from __future__ import annotations

from pathlib import Path

FOLDERS = ("pipelines", "entity_libraries", "style_libraries", "prompts")
"""What setup.py copies into the wheel."""
_CHECKOUT = Path(__file__).resolve().parents[1]
_WHEEL = Path(__file__).resolve().parent / "bundled"


def data_root() -> Path | None:
    """The folder holding pipelines/ and the libraries: the checkout's, else the wheel's."""
    for root in (_CHECKOUT, _WHEEL):
        if (root / "pipelines" / "quickstart.yaml").is_file():
            return root
    return None


def recipe_names() -> list[str]:
    root = data_root()
    return sorted(p.stem for p in (root / "pipelines").glob("*.yaml")) if root else []


def find_recipe(path: str | Path) -> Path:
    """`path` itself when it exists; else a shipped recipe by name (`quickstart` or
    `quickstart.yaml`); else `path` unchanged, for the loader to report as missing."""
    given = Path(path)
    if given.exists() or given.parent != Path():
        return given
    root = data_root()
    if root is None:
        return given
    shipped = root / "pipelines" / (given.name if given.suffix else f"{given.name}.yaml")
    return shipped if shipped.is_file() else given
