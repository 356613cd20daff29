"""The deployment files agree with versions.env and pyproject (docker/check.py, offline)."""

from __future__ import annotations

import importlib.util

from conftest import ROOT


def test_deployment_checks_pass(capsys):
    spec = importlib.util.spec_from_file_location("docker_check", ROOT / "docker" / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() == 0, capsys.readouterr().out
