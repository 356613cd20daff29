"""`datapipe recipe-keys`: every key the loader accepts, with its type, default and meaning."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from datapipe.cli import app
from datapipe.recipe_keys import key_rows


def printed_rows() -> dict[str, list[str]]:
    result = CliRunner().invoke(app, ["recipe-keys", "--markdown"])
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 4, line
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_printed_key_has_a_meaning():
    rows = printed_rows()
    assert set(rows) == {row.path for row in key_rows()}
    empty = sorted(key for key, (_, _, meaning) in rows.items() if not meaning)
    assert not empty, f"{len(empty)} recipe keys without a meaning: {empty}"
    assert "Groups per block" in rows["block_size"][2]
    assert "refused" in rows["stages.image.enabled"][2]  # says so rather than pretend
