"""Stable hashes and the ids and seeds derived from them.

Ids and seeds are functions of (generation hash, group kind, index, member) so that the
same recipe always produces the same specs, seeds and bytes, whichever worker runs them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no whitespace: the input of every hash."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def group_id(generation_hash: str, kind: str, index: int) -> str:
    """A key-safe id: letters, digits and dashes only (WebDataset splits keys at dots)."""
    return f"{kind}-{generation_hash[:8]}-{index:06d}"


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from any parts; fits every RNG (numpy, torch, PIL, random)."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:4], "big") & 0x7FFFFFFF
