"""notebooks/inspect.ipynb runs top to bottom against the quickstart output and draws."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "inspect.ipynb"


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def test_notebook_runs_and_renders_images(quickstart_run, monkeypatch):
    monkeypatch.setenv("DATAPIPE_OUT", str(quickstart_run[0]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error

    def outputs(cell):
        return [o for o in cell.get("outputs", []) if o.get("output_type") != "stream"]

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(o.output_type != "error" for cell in code for o in cell.outputs)
    images = [o for cell in code for o in outputs(cell) if "image/png" in o.get("data", {})]
    # A grid per task, two rejects pictures and three histogram figures at least.
    assert len(images) >= 6 + 1 + 3, [list(o.get("data", {})) for c in code for o in outputs(c)]
    grids = [
        cell
        for cell in code
        if "show(" in cell.source and any("image/png" in o.get("data", {}) for o in outputs(cell))
    ]
    assert grids, "no cell shows a sample grid"
    html = [o for cell in code for o in outputs(cell) if "text/html" in o.get("data", {})]
    assert any("data:image/png;base64," in o["data"]["text/html"] for o in html)
