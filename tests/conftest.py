"""Shared fixtures: the quickstart recipe, recipe variants, and one full quickstart run.

The full run is session-scoped: it is the dataset every invariant test walks over, so
the suite pays for it once.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import yaml
from _common import merge
from filelock import FileLock

from datapipe.libraries import LoadedRecipe
from datapipe.loading import load_recipe
from datapipe.runner.local import run_local
from datapipe.runner.summary import RunSummary

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "pipelines" / "quickstart.yaml"


def quickstart_data() -> dict[str, Any]:
    data = yaml.safe_load(QUICKSTART.read_text(encoding="utf-8"))
    data["libraries"] = {
        "entities": str(ROOT / "entity_libraries"),
        "styles": str(ROOT / "style_libraries"),
        "prompts": str(ROOT / "prompts"),
    }
    return data


def write_recipe(
    folder: Path, override: dict[str, Any] | None = None, name: str = "recipe.yaml"
) -> Path:
    """The quickstart recipe with `override` merged in, written to `folder`."""
    path = folder / name
    path.write_text(yaml.safe_dump(merge(quickstart_data(), override or {}), allow_unicode=True))
    return path


@pytest.fixture(scope="session")
def quickstart() -> LoadedRecipe:
    return load_recipe(QUICKSTART)


@pytest.fixture(scope="session")
def quickstart_run(
    tmp_path_factory: pytest.TempPathFactory, quickstart: LoadedRecipe, worker_id: str
) -> tuple[Path, RunSummary]:
    """Under pytest-xdist the workers share one run (the first to ask renders it, the
    others wait on the lock and read it), so `-n 2` does not render it twice."""
    if worker_id == "master":
        out = tmp_path_factory.mktemp("quickstart")
        return out, run_local(quickstart, out)
    shared = tmp_path_factory.getbasetemp().parent
    out, done = shared / "quickstart", shared / "quickstart-summary.pickle"
    with FileLock(shared / "quickstart.lock"):
        if not done.is_file():
            done.write_bytes(pickle.dumps(run_local(quickstart, out)))
    return out, pickle.loads(done.read_bytes())


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole pytest run (starting one costs seconds)."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(
        num_cpus=4,
        object_store_memory=300 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()
