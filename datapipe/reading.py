"""Reading the YAML files people write (recipes, libraries) safely, and reporting their
mistakes as one line each: `FILE: field.path: message`, with no traceback.

A foundation module: the recipe loader and the library loader both read through it.
"""

from __future__ import annotations

from difflib import get_close_matches
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError


def format_location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + shown(item))
    return "".join(parts) or "(top level)"


MAX_LISTED_ERRORS = 10


def validation_message(
    path: Path, error: ValidationError, schema: type[BaseModel] | None = None
) -> str:
    """One line for all problems, each `FILE: field.path: message (got VALUE)` and
    joined by "; " (at most MAX_LISTED_ERRORS of them, then a count); an unknown key
    gets the closest key `schema` allows there, a likely misspelling."""
    lines = []
    errors = error.errors()
    for item in errors[:MAX_LISTED_ERRORS]:
        loc = format_location(tuple(item["loc"]))
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = unknown_key_message(schema, tuple(item["loc"]))
        elif item["type"] == "missing":
            msg = "required key is missing"
        elif "input" in item and not isinstance(item["input"], dict | list):
            msg += f" (got {_short_repr(item['input'])})"
        lines.append(f"{path}: {loc}: {shown(msg)}")
    if len(errors) > MAX_LISTED_ERRORS:
        lines.append(f"{path}: and {len(errors) - MAX_LISTED_ERRORS} more problems")
    return "; ".join(lines)


def unwrap(annotation: Any) -> Any:
    """The model or container inside Annotated[...] and `X | None`."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def keys_at(schema: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys `schema` allows beside the last element of `loc`."""
    node: Any = schema
    for part in loc[:-1]:
        node = unwrap(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return []
            node = field.annotation
        elif get_origin(node) in (dict, list, tuple):
            node = get_args(node)[-1]
        else:
            return []
    node = unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return []


def unknown_key_message(schema: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    allowed = keys_at(schema, loc) if schema is not None else []
    close = get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6) if loc else []
    hint = f"did you mean {close[0]!r}? " if close else ""
    listed = f"allowed here: {', '.join(allowed)}; " if allowed and not close else ""
    return f"unknown key ({hint}{listed}every recipe key is listed by `datapipe recipe-keys`)"


def _short_repr(value: Any) -> str:
    if isinstance(value, str | bytes) and len(value) > 60:
        value = value[:60]
    try:
        return repr(value)[:60]
    except ValueError:  # an int too long to print
        return f"a {type(value).__name__}"


MAX_YAML_BYTES = 4 * 2**20
"""Largest recipe or library file read (the shipped ones are under 25 KB)."""
MAX_YAML_ALIASES = 100
"""Alias references (`*name`) per document: enough for sharing a block, too few for a bomb."""
MAX_YAML_DEPTH = 32
"""Nesting depth of a document, aliases expanded (the recipe schema is 6 levels deep)."""
MAX_YAML_NODES = 100_000
"""Nodes of a document with every alias expanded (the largest shipped file has ~5,000)."""
MAX_YAML_INT_CHARS = 40
"""Longer integer literals are refused before Python converts them (no digit-limit crash)."""


class YamlRefused(yaml.YAMLError):
    """A document refused by _LimitedLoader: a bomb, a duplicate key, an unbuildable value."""

    def __init__(self, problem: str, mark: yaml.Mark | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _SafeBase(
        yaml.composer.Composer, CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver
    ):
        """libyaml scans and parses (several times faster); composing and constructing
        stay in Python, where _LimitedLoader can count and refuse."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

else:  # pragma: no cover - a PyYAML built without libyaml
    _SafeBase = yaml.SafeLoader  # type: ignore[misc,assignment]


class _LimitedLoader(_SafeBase):
    """A safe loader that refuses anchor bombs ("billion laughs"), recursive aliases,
    deep nesting (a RecursionError in the composer), duplicate keys, absurdly long
    integers and values Python cannot build (a date such as 2026-02-30).

    Aliases are counted while composing; the composed graph is then measured with
    every alias expanded (iteratively, shared nodes memoised), so nothing downstream
    (validation, hashing, JSON) ever walks more than MAX_YAML_NODES nodes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise YamlRefused(
                    f"more than {MAX_YAML_ALIASES} aliases (*name): refused as a possible "
                    "anchor bomb",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise YamlRefused(
                    f"nested more than {MAX_YAML_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: str | None) -> yaml.MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: set[tuple[str, str]] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if (key.tag, key.value) in seen:
                    raise YamlRefused(
                        f"duplicate key {shown(key.value)!r} (the second would silently win)",
                        key.start_mark,
                    )
                seen.add((key.tag, key.value))
        return node

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expansion(node)
        return super().construct_document(node)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # e.g. a date such as 2026-02-30
            raise YamlRefused(f"cannot build this value ({exc})", node.start_mark) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_YAML_INT_CHARS:
            raise YamlRefused(
                f"integer literal of {len(node.value)} characters is too long", node.start_mark
            )
        return super().construct_yaml_int(node)


_LimitedLoader.add_constructor("tag:yaml.org,2002:int", _LimitedLoader.construct_yaml_int)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a recursive alias, or a graph whose expanded size or depth is over the limits."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_YAML_NODES:
                raise YamlRefused(
                    f"expands to more than {MAX_YAML_NODES} nodes through its aliases: "
                    "refused as a possible anchor bomb",
                    node.start_mark,
                )
            if depth[key] > MAX_YAML_DEPTH:
                raise YamlRefused(
                    f"nested more than {MAX_YAML_DEPTH} levels deep through its aliases",
                    node.start_mark,
                )
            continue
        if key in size:
            continue
        if key in on_path:
            raise YamlRefused("an alias refers to a node that contains it", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in size)


def shown(text: object) -> str:
    """`text` on one line: characters that are not printable (newlines, NUL, bidi
    controls, lone surrogates) as escapes, so a message stays one readable line."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in str(text)
    )


def read_yaml(path: Path, error: type[Exception]) -> Any:
    """Parse YAML safely; syntax errors name the file, line and column.

    Files over MAX_YAML_BYTES, anchor bombs, recursive aliases and deep nesting are
    refused with the same one-line error (see _LimitedLoader)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise error(f"file not found: {path}") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a YAML file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    if len(raw) > MAX_YAML_BYTES:
        raise error(f"{path}: larger than {MAX_YAML_BYTES // 2**20} MiB: refused")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from None
    loader = None
    try:
        loader = _LimitedLoader(text)  # the reader refuses NUL and other specials here
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where}: invalid YAML: {shown(problem)}") from None
    except (RecursionError, ValueError, OverflowError) as exc:
        # a YAML value Python cannot build (a backstop: the limits above should come first)
        raise error(f"{path}: invalid YAML: {shown(exc)[:200]}") from None
    finally:
        if loader is not None:
            loader.dispose()
