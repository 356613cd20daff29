"""Mutated recipes and library files: a one-line error naming the file and field, never a
traceback, never an output directory, never unbounded memory or time.

Property-based (hypothesis, derandomized, a bounded number of examples): starting from the
quickstart recipe and the shipped libraries, mutations set values of the wrong type, huge
numbers, hostile strings, delete required keys, add unknown keys, empty lists, insert
non-UTF-8 bytes, truncate files, and plant YAML anchor bombs. Each mutated file goes
through `datapipe run RECIPE --out DIR` (typer's CliRunner). The outcome is either a valid
recipe (the mutation happened to be harmless) or:

- a `DatapipeError` whose str is one line, holds the file's path and, for a structural
  mutation, the path of a mutated field (or of a parent of it);
- exit status 2, one line of output, no traceback;
- no DIR.

A spy wraps the CLI's `load_recipe` to keep the raised error and replaces `run_local`: a
mutated recipe that is still valid composes its first groups' prompt specs (which must not
crash) instead of running the pipeline.
"""

from __future__ import annotations

import copy
import math
import re
import shutil
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT, quickstart_data
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from typer.testing import CliRunner

import datapipe.cli as cli
from datapipe.backends.template_composer import TemplateComposer
from datapipe.errors import DatapipeError, LibraryError, RecipeError
from datapipe.loading import load_recipe
from datapipe.plan import plan_groups
from datapipe.reading import MAX_YAML_ALIASES, MAX_YAML_BYTES, MAX_YAML_NODES, format_location

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
THEMES = ["food", "products"]  # two entity files: each example loads the libraries once
LIBRARY_FILES = [
    "entity_libraries/food.yaml",
    "entity_libraries/products.yaml",
    "style_libraries/styles.yaml",
    "style_libraries/layouts.yaml",
    "prompts/copy.yaml",
    "prompts/instructions.yaml",
    "prompts/poster.yaml",
]


# -- the workspace: a recipe and a copy of the libraries, restored after every example ----
class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        for folder in ("style_libraries", "prompts"):
            shutil.copytree(ROOT / folder, self.root / folder)
        (self.root / "entity_libraries").mkdir()
        for theme in THEMES:
            shutil.copy(ROOT / "entity_libraries" / f"{theme}.yaml", self.root / "entity_libraries")
        self.recipe = self.root / "pipelines" / "recipe.yaml"
        self.recipe.parent.mkdir()
        data = quickstart_data()
        data["themes"] = THEMES
        data["libraries"] = {
            "entities": "../entity_libraries",
            "styles": "../style_libraries",
            "prompts": "../prompts",
        }
        self.recipe_data = data
        self.recipe_text = yaml.safe_dump(data, allow_unicode=True).encode()
        self.recipe.write_bytes(self.recipe_text)
        self.originals = {name: (self.root / name).read_bytes() for name in LIBRARY_FILES}
        self.out = self.root / "out" / "run"

    def restore(self) -> None:
        self.recipe.write_bytes(self.recipe_text)
        for name, data in self.originals.items():
            (self.root / name).write_bytes(data)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    workspace = Workspace(tmp_path_factory.mktemp("fuzz"))
    load_recipe(workspace.recipe)  # the unmutated workspace is valid
    return workspace


class Spy:
    """Keeps what the CLI's load_recipe raised; a valid recipe stops before running."""

    class ReachedRunError(Exception):
        pass

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.error: BaseException | None = None
        real = cli.load_recipe

        def load(path: Any):
            self.error = None
            try:
                return real(path)
            except BaseException as exc:
                self.error = exc
                raise

        def run_local(loaded: Any, *args: Any, **kwargs: Any):
            # instead of a run: compose the first groups (a valid recipe must not crash there)
            composer = TemplateComposer(loaded)
            for slot in plan_groups(loaded, limit=12):
                composer.compose(slot.to_group())
            raise Spy.ReachedRunError

        monkeypatch.setattr(cli, "load_recipe", load)
        monkeypatch.setattr(cli, "run_local", run_local)


@pytest.fixture(scope="module")
def spy() -> Spy:
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield Spy(monkeypatch)


runner = CliRunner()


def say(text: str, outcome: str) -> None:
    """hypothesis.note (and an event for --hypothesis-show-statistics) where there is a
    hypothesis example to attach them to."""
    if currently_in_test_context():
        note(text)
        event(outcome)


def outcome(ws: Workspace, spy: Spy, named: Path, fields: list[tuple] | None = None) -> str:
    """Run the CLI on the workspace's recipe; check the error rules; 'valid' or 'error'."""
    began = time.perf_counter()
    result = runner.invoke(cli.app, ["run", str(ws.recipe), "--out", str(ws.out), "-q"])
    elapsed = time.perf_counter() - began
    assert elapsed < 5, f"took {elapsed:.1f} s"
    if isinstance(result.exception, Spy.ReachedRunError):
        say("still a valid recipe", "valid")
        return "valid"
    error = spy.error
    say(f"error: {error!r}", type(error).__name__)
    if error is None:  # load_recipe passed; composing the first groups failed
        raise AssertionError("a valid recipe crashed the composer") from result.exception
    assert isinstance(error, DatapipeError), f"{type(error).__name__}: {error}"
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    message = str(error)
    assert "\n" not in message and "\r" not in message, message
    assert str(named) in message, message
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert not ws.out.exists() and not ws.out.parent.exists(), "a bad recipe made --out"
    if fields:
        prefixes = {format_location(path[:k]) for path in fields for k in range(1, len(path) + 1)}
        assert any(prefix in message for prefix in prefixes), (message, sorted(prefixes))
    return "error"


# -- structural mutations of a parsed document ----------------------------------------------
def walk(data: Any, prefix: tuple = ()) -> list[tuple]:
    found = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.append((*prefix, key))
            found.extend(walk(value, (*prefix, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.append((*prefix, index))
            found.extend(walk(value, (*prefix, index)))
    return found


def lookup(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


SAFE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)),
    max_size=24,
)
HOSTILE = [
    None,
    True,
    0,
    -1,
    2**31,
    10**30,
    -(10**30),
    1e308,
    math.inf,
    -math.inf,
    math.nan,
    "",
    " ",
    "lol",
    "x" * 5000,
    "\x00",
    "nul\x00inside",
    "\x1b[31mred",
    "two\nlines",
    "\u202eevil\u202c",
    "zero\u200bwidth",
    "../../../../etc/passwd",
    "C:\\Windows\\system32",
    "{",
    "}{",
    "{name!r}",
    "{price:>999999999}",
    "{name.__class__}",
    "2026-02-30",
    "ＳＡＬＥ",
    "\ufeff",
    "[/x]",
    "[bold]markup[/]",
    [],
    [1, "a"],
    [[[[]]]],
    {},
    {"bogus": 1},
]
VALUES = st.one_of(
    st.sampled_from(HOSTILE),
    st.integers(-(10**35), 10**35),
    st.floats(),
    SAFE_TEXT,
)
KEYS = SAFE_TEXT.filter(lambda k: k != "<<")


def mutations(base: dict[str, Any]) -> st.SearchStrategy:
    paths = walk(base)
    dicts = [()] + [p for p in paths if isinstance(lookup(base, p), dict)]
    lists = [p for p in paths if isinstance(lookup(base, p), list)]
    one = st.one_of(
        st.tuples(st.just("set"), st.sampled_from(paths), VALUES),
        st.tuples(st.just("delete"), st.sampled_from(paths)),
        st.tuples(st.just("unknown"), st.sampled_from(dicts), KEYS, VALUES),
        st.tuples(st.just("empty"), st.sampled_from(lists)),
    )
    return st.lists(one, min_size=1, max_size=3)


def mutate(base: dict[str, Any], changes: list[tuple]) -> tuple[Any, list[tuple]]:
    """Apply what still applies; the paths of the fields touched."""
    data = copy.deepcopy(base)
    touched = []
    for change in changes:
        kind, path = change[0], change[1]
        try:
            parent = lookup(data, path[:-1]) if kind != "unknown" else lookup(data, path)
        except (KeyError, IndexError, TypeError):
            continue
        if kind == "unknown":
            if not isinstance(parent, dict) or change[2] in parent:
                continue
            parent[change[2]] = change[3]
            touched.append((*path, change[2]))
            continue
        if not isinstance(parent, dict | list):
            continue
        if isinstance(parent, dict) and path[-1] not in parent:
            continue
        if isinstance(parent, list) and not (isinstance(path[-1], int) and path[-1] < len(parent)):
            continue
        if kind == "set":
            parent[path[-1]] = change[2]
        elif kind == "delete":
            del parent[path[-1]]
        elif kind == "empty":
            parent[path[-1]] = []
        touched.append(path)
    return data, touched


def dump(data: Any) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True, width=1000).encode()


QUICKSTART = quickstart_data()
QUICKSTART["themes"] = THEMES
LIBRARY_DATA = {name: yaml.safe_load((ROOT / name).read_text("utf-8")) for name in LIBRARY_FILES}


@FUZZ
@given(changes=mutations(QUICKSTART))
def test_mutated_recipes_give_one_line_errors(ws, spy, changes):
    data, touched = mutate(ws.recipe_data, changes)
    note(f"touched: {touched}")
    try:
        ws.recipe.write_bytes(dump(data))
        outcome(ws, spy, ws.recipe, touched)
    finally:
        ws.restore()


@st.composite
def library_mutation(draw: st.DrawFn) -> tuple[str, list[tuple]]:
    name = draw(st.sampled_from(LIBRARY_FILES))
    return name, draw(mutations(LIBRARY_DATA[name]))


@FUZZ
@given(mutation=library_mutation())
def test_mutated_libraries_give_one_line_errors(ws, spy, mutation):
    name, changes = mutation
    data, touched = mutate(LIBRARY_DATA[name], changes)
    note(f"{name} touched: {touched}")
    try:
        (ws.root / name).write_bytes(dump(data))
        outcome(ws, spy, ws.root / name, touched)
    finally:
        ws.restore()


# -- byte-level damage -------------------------------------------------------------------------
DAMAGE = st.tuples(
    st.sampled_from(["recipe", *LIBRARY_FILES]),
    st.sampled_from(["insert", "replace", "truncate"]),
    st.floats(0, 1),
    st.one_of(
        st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00", b"\xfe\xff", b"\t"]),
        st.binary(min_size=1, max_size=4),
    ),
)


@settings(FUZZ, max_examples=50)
@given(damage=DAMAGE)
def test_damaged_bytes_give_one_line_errors(ws, spy, damage):
    name, kind, where, junk = damage
    path = ws.recipe if name == "recipe" else ws.root / name
    original = path.read_bytes()
    at = round(where * len(original))
    if kind == "insert":
        data = original[:at] + junk + original[at:]
    elif kind == "replace":
        data = original[:at] + junk + original[at + len(junk) :]
    else:
        data = original[:at]
    try:
        path.write_bytes(data)
        outcome(ws, spy, path)
    finally:
        ws.restore()


# -- anchor bombs --------------------------------------------------------------------------------
def bomb(levels: int, fan: int, payload: str = "lol") -> str:
    lines = [f"b0: &b0 [{', '.join([payload] * fan)}]"]
    for level in range(1, levels):
        lines.append(f"b{level}: &b{level} [{', '.join([f'*b{level - 1}'] * fan)}]")
    return "\n".join(lines) + "\n"


@settings(FUZZ, max_examples=30)
@given(
    levels=st.integers(2, 12),
    fan=st.integers(2, 12),
    target=st.sampled_from(["recipe", "entity_libraries/food.yaml", "style_libraries/styles.yaml"]),
    where=st.sampled_from(["top", "value"]),
)
def test_anchor_bombs_are_refused_quickly(ws, spy, levels, fan, target, where):
    path = ws.recipe if target == "recipe" else ws.root / target
    original = path.read_bytes().decode()
    if where == "top":
        text = bomb(levels, fan) + original
    else:  # the last anchor is the value of a field the schema knows
        field = {"recipe": "themes:", "entity_libraries/food.yaml": "theme:"}.get(target, "styles:")
        text = bomb(levels, fan) + original.replace(field, f"{field} *b{levels - 1}\n_was:", 1)
    try:
        path.write_text(text, encoding="utf-8")
        began = time.perf_counter()
        outcome(ws, spy, path)
        assert time.perf_counter() - began < 2
        expanded = fan**levels
        if expanded > MAX_YAML_NODES or fan * (levels - 1) > MAX_YAML_ALIASES:
            assert "anchor bomb" in str(spy.error), spy.error
    finally:
        ws.restore()


def test_billion_laughs_is_refused_in_bounded_memory_and_time(tmp_path):
    path = tmp_path / "laughs.yaml"
    path.write_text(bomb(9, 9) + "name: x\n")  # 9**9 = 387 million strings once expanded
    tracemalloc.start()
    began = time.perf_counter()
    try:
        with pytest.raises(RecipeError, match="anchor bomb") as info:
            load_recipe(path)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - began < 1
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: invalid YAML: ", str(info.value))


# -- named hostile documents -------------------------------------------------------------------
CASES = {
    "recursive alias": "a: &a [*a]\n",
    "recursive mapping": "execution: &r {stages: {x: {resources: *r}}}\n",
    "deep nesting": "zz: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep mapping": "zz: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    "many aliases": "a: &a x\nb: [" + ", ".join(["*a"] * (MAX_YAML_ALIASES + 1)) + "]\n",
    "wide fan-out": "a: &a [" + ", ".join(["x"] * 2000) + "]\nb: [" + "*a, " * 60 + "]\n",
    "decimal integer of 5000 digits": "zz: " + "9" * 5000 + "\n",
    "hex integer of 20000 digits": "zz: 0x" + "f" * 20000 + "\n",
    "impossible date": "zz: 2026-02-30\n",
    "duplicate key": "zz: 1\nzz: 2\n",
    "python tag": "zz: !!python/object/apply:os.system ['true']\n",
    "two documents": "zz: 1\n---\nzz: 2\n",
    "tab indentation": "zz:\n\tsingle: 1\n",
    "empty file": "",
    "only a comment": "# nothing\n",
    "a list": "- 1\n- 2\n",
    "a scalar": "just text\n",
    "BOM and NUL": "\ufeffzz: \x00\n",
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("target", ["recipe", "style_libraries/layouts.yaml"])
def test_hostile_documents_are_refused(ws, spy, name, target):
    path = ws.recipe if target == "recipe" else ws.root / target
    body = CASES[name]
    if name in ("empty file", "only a comment", "a list", "a scalar", "two documents"):
        text = body
    else:
        text = body + path.read_text()
    try:
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        assert outcome(ws, spy, path) == "error"
        assert isinstance(spy.error, RecipeError if target == "recipe" else LibraryError)
    finally:
        ws.restore()


def test_non_utf8_oversized_and_missing_files(ws, spy):
    try:
        ws.recipe.write_bytes(b"name: caf\xe9\n" + ws.recipe_text)
        assert outcome(ws, spy, ws.recipe) == "error" and "not UTF-8" in str(spy.error)
        ws.recipe.write_bytes(b"# padding\n" * (MAX_YAML_BYTES // 10 + 1))
        assert outcome(ws, spy, ws.recipe) == "error" and "MiB" in str(spy.error)
        ws.restore()
        (ws.root / "prompts" / "poster.yaml").write_bytes(b"\x80" * 64)
        assert outcome(ws, spy, ws.root / "prompts" / "poster.yaml") == "error"
        ws.restore()
        (ws.root / "style_libraries" / "layouts.yaml").unlink()
        assert outcome(ws, spy, ws.root / "style_libraries" / "layouts.yaml") == "error"
        ws.restore()
        (ws.root / "style_libraries" / "styles.yaml").unlink()
        (ws.root / "style_libraries" / "styles.yaml").mkdir()
        assert outcome(ws, spy, ws.root / "style_libraries" / "styles.yaml") == "error"
    finally:
        if (ws.root / "style_libraries" / "styles.yaml").is_dir():
            (ws.root / "style_libraries" / "styles.yaml").rmdir()
        ws.restore()


@pytest.mark.parametrize(
    "value", ["a\x00b", "lib\nraries", "\udc80", "../entity_libraries\x00/../x"]
)
def test_library_folders_with_control_characters(ws, spy, value):
    data = copy.deepcopy(ws.recipe_data)
    data["libraries"]["entities"] = value
    try:
        ws.recipe.write_bytes(
            yaml.safe_dump(data, allow_unicode=False).encode("utf-8", "surrogatepass")
        )
        # libyaml refuses the escaped lone surrogate itself (invalid YAML, with line and column)
        fields = None if value == "\udc80" else [("libraries", "entities")]
        assert outcome(ws, spy, ws.recipe, fields) == "error"
    finally:
        ws.restore()


def test_non_finite_thresholds_and_absurd_sizes_are_refused(ws, spy):
    cases = [
        (("thresholds", "blank", "min"), math.nan),
        (("thresholds", "blank", "max"), math.inf),
        (("image", "sizes"), {"1:1": [10**9, 10**9]}),
        (("image", "sizes"), {"1:1": [0, 512]}),
        (("image", "sizes"), {"square": [512, 512]}),
        (("execution", "stages"), {"render": {"resources": {"gpu_h200": math.nan}}}),
    ]
    for path, value in cases:
        data = copy.deepcopy(ws.recipe_data)
        parent = data
        for part in path[:-1]:
            parent = parent.setdefault(part, {})
        parent[path[-1]] = value
        try:
            ws.recipe.write_bytes(dump(data))
            assert outcome(ws, spy, ws.recipe, [path]) == "error", path
        finally:
            ws.restore()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("overrides", ["++model._target_=os.system"]),
        ("overrides", ["++model.image_size=${oc.env:OPENAI_API_KEY}"]),
        ("config", "/tmp/evil.yaml"),
        ("config", "../../evil.yaml"),
    ],
)
def test_sam2_settings_that_would_run_code_are_refused(ws, spy, field, value):
    """Hydra instantiates `_target_`s and resolves `${...}`: a recipe sets values only."""
    data = copy.deepcopy(ws.recipe_data)
    sam2 = {"checkpoint": "/models/sam2.pt", "detector": "/models/dino", field: value}
    data["stages"]["subject"] = {"backend": "sam2", "sam2": sam2}
    try:
        ws.recipe.write_bytes(dump(data))
        assert outcome(ws, spy, ws.recipe, [("stages", "subject", "sam2", field)]) == "error"
    finally:
        ws.restore()


@pytest.mark.parametrize("text", ["'[/x]': 1\n", "'[bold]x': 1\n", "seed: '[/]'\n"])
def test_error_text_is_not_rich_markup(ws, spy, text):
    try:
        ws.recipe.write_bytes(text.encode() + ws.recipe_text.replace(b"seed:", b"_seed:", 1))
        assert outcome(ws, spy, ws.recipe) == "error"
        result = runner.invoke(cli.app, ["run", str(ws.recipe), "--out", str(ws.out)])
        assert str(spy.error) in result.output
    finally:
        ws.restore()
