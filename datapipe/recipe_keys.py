"""Every recipe key, its type, default and meaning, read from the schema itself.

`datapipe recipe-keys` prints it and an unknown-key error points to it: generated from the
pydantic models, it cannot drift from what the loader accepts.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from types import UnionType
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_jsonable_python

from datapipe.reading import unwrap
from datapipe.recipe import Recipe


@dataclass(frozen=True)
class KeyRow:
    path: str
    type: str
    default: str
    meaning: str


def type_name(annotation: Any) -> str:
    """A short, readable type: `int`, `list[str]`, `float | None`, `'a' | 'b'`."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return type_name(get_args(annotation)[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in get_args(annotation))
    if origin in (typing.Union, UnionType):
        return " | ".join(type_name(a) for a in get_args(annotation))
    if origin is not None:
        args = ", ".join(type_name(a) for a in get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "(see keys below)"
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


def _meaning(field: Any, nested: Any) -> str:
    text = field.description or ""
    if not text and isinstance(nested, type) and issubclass(nested, BaseModel):
        text = nested.__doc__ or ""
    return " ".join(text.split())


def key_rows(model: type[BaseModel] = Recipe, prefix: str = "") -> list[KeyRow]:
    """Depth first, in schema order; a mapping of models (`thresholds.NAME`) shows its value's
    keys under `NAME`."""
    rows: list[KeyRow] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        inner = unwrap(field.annotation)
        rows.append(
            KeyRow(path, type_name(field.annotation), _default(field), _meaning(field, inner))
        )
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            rows.extend(key_rows(inner, f"{path}."))
        elif get_origin(inner) in (dict, list):
            value = unwrap(get_args(inner)[-1])
            if isinstance(value, type) and issubclass(value, BaseModel):
                part = "NAME" if get_origin(inner) is dict else "[i]"
                rows.extend(key_rows(value, f"{path}.{part}."))
    return rows


def markdown() -> str:
    lines = [
        "# Recipe keys",
        "",
        "Generated from the recipe schema (`datapipe recipe-keys --markdown`); unknown keys are",
        "errors.",
        "",
        "| key | type | default | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for row in key_rows():
        cells = [f"`{row.path}`", row.type, row.default, row.meaning]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
