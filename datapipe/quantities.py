"""Kubernetes quantities ("80Gi", "500m", "8589934592") as numbers.

A foundation module on the standard library alone: `datapipe doctor --manifests` reads the
rendered manifests with it, and docker/check.py (run without datapipe's dependencies)
imports it from the source tree, so both read a manifest's sizes the same way.
"""

from __future__ import annotations

import re
from typing import Any

_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P|m)?")
_FACTORS = {
    None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50,
}  # fmt: skip


def parse_quantity(text: Any) -> float:
    """The number a quantity stands for; ValueError names the text when it is not one."""
    match = _QUANTITY.fullmatch(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (write e.g. 8, 500m or 80Gi)")
    return float(match.group(1)) * _FACTORS[match.group(2)]
