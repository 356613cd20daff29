"""Errors a user can act on.

Every error raised on purpose by datapipe says what went wrong, where (file, field,
sample id) and how to fix it; the CLI prints it as one line without a traceback.
"""

from __future__ import annotations


class DatapipeError(Exception):
    """Base class of errors that carry a location and a fix."""

    def __init__(self, what: str, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text += f" (fix: {self.fix})"
        return text


class RecipeError(DatapipeError):
    """A recipe file that cannot be parsed or validated."""


class LibraryError(DatapipeError):
    """An entity, style, layout or prompt library that is missing or invalid."""


class MissingDependencyError(DatapipeError):
    """A backend whose optional packages are not installed."""


class OutputError(DatapipeError):
    """An output directory that cannot be written or does not match the recipe."""
