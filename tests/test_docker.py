"""The deployment files agree with versions.env and pyproject (docker/check.py, offline)."""

from __future__ import annotations

import importlib.util

from conftest import ROOT


def test_deployment_checks_pass(capsys):
    spec = importlib.util.spec_from_file_location("docker_check", ROOT / "docker" / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main() == 0, capsys.readouterr().out


def test_check_reads_quantities_with_datapipes_parser():
    """One parser of `16Gi`/`500m`: docker/check.py imports datapipe's, keeps no copy."""
    from datapipe.quantities import parse_quantity

    spec = importlib.util.spec_from_file_location("docker_check", ROOT / "docker" / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.parse_quantity is parse_quantity
    assert not hasattr(module, "quantity")
