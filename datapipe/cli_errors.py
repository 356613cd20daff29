"""How every `datapipe` command reports an error it raised on purpose: one line, status 2."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from datapipe.errors import DatapipeError

console = Console(stderr=True)


def fail(error: DatapipeError) -> None:
    # The message quotes user input (recipe keys, values, paths): never read it as markup.
    console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)
