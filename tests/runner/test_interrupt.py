"""Ctrl-C: the run says what it kept and how to resume; verify reports it as unfinished
and checks what was committed; the rerun finishes it to the uninterrupted bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from conftest import write_recipe
from helpers import SMALL, run_command
from shards import tree_digest
from typer.testing import CliRunner

from datapipe.cli import INTERRUPTED, UNFINISHED, app
from datapipe.loading import load_recipe
from datapipe.runner.local import run_local
from datapipe.verify import unfinished, verify

pytestmark = pytest.mark.timeout(600)
LIMIT = 9  # three blocks of three groups: the interrupt comes after the first


def test_ctrl_c_says_how_to_resume_and_verify_says_unfinished(tmp_path):
    recipe = write_recipe(tmp_path, SMALL)
    out = tmp_path / "out"
    process = subprocess.Popen(
        run_command(recipe, out, LIMIT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # as in a terminal: a runner that started the suite in the background hands its
        # children an ignored SIGINT, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not (out / "blocks" / "block-000000.json").is_file():
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "no block was committed"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == INTERRUPTED, stderr
    assert "Traceback" not in stderr
    assert "interrupted:" in stderr and "rerun the same command to resume" in stderr

    progress = unfinished(out)
    assert progress is not None and progress.planned == LIMIT // 3
    assert 1 <= progress.committed < progress.planned
    assert all(not check.faults for check in verify(out)), verify(out)
    result = CliRunner().invoke(app, ["verify", str(out)])
    assert result.exit_code == UNFINISHED, result.output
    assert f"unfinished: {progress.committed} of {progress.planned} blocks" in result.output

    rerun = subprocess.run(run_command(recipe, out, LIMIT), capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert unfinished(out) is None
    assert CliRunner().invoke(app, ["verify", str(out)]).exit_code == 0
    reference = tmp_path / "reference"
    run_local(load_recipe(recipe), reference, limit=LIMIT)
    assert tree_digest(out) == tree_digest(reference)
