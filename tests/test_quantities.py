"""Kubernetes quantities, read once for doctor --manifests and docker/check.py."""

from __future__ import annotations

import pytest

from datapipe.errors import DatapipeError
from datapipe.manifests import quantity
from datapipe.quantities import parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [("8", 8.0), ("500m", 0.5), ("80Gi", 80 * 2.0**30), ("1.5k", 1500.0), (8589934592, 2.0**33)],
)
def test_quantities_read_as_numbers(text, value):
    assert parse_quantity(text) == value
    assert quantity(text, "pod") == value


def test_a_bad_quantity_says_what_and_where():
    with pytest.raises(ValueError, match="'80GB' is not a Kubernetes quantity"):
        parse_quantity("80GB")
    with pytest.raises(DatapipeError, match="80GB") as raised:
        quantity("80GB", "raycluster.yaml: worker memory")
    assert "raycluster.yaml: worker memory" in str(raised.value)
