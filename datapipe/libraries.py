"""Entity, style, layout and prompt libraries: loaded, validated, hashed.

Libraries are written by people, so the loader checks what a person gets wrong:
duplicate ids or names, a missing language, empty fields, unknown drawing shapes or
motifs, placeholders a template may not use. Each error names the file and field.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    RootModel,
    StringConstraints,
    ValidationError,
    model_validator,
)

from datapipe.drawables import MOTIFS, SHAPES
from datapipe.errors import LibraryError
from datapipe.hashing import digest
from datapipe.reading import read_yaml, shown, validation_message
from datapipe.recipe import ALL_THEMES, Libraries, Recipe, Strict, Theme


def no_control(value: str) -> str:
    """Library text ends up in prompts, poster copy, instructions and sample metadata: a
    control character (NUL, newline, escape, C1) in it is a mistake or an attack."""
    for i, char in enumerate(value):
        if unicodedata.category(char) == "Cc":
            raise ValueError(
                f"control character U+{ord(char):04X} at position {i} is not allowed in text"
            )
    return value


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=400),
    AfterValidator(no_control),
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=80),
    AfterValidator(no_control),
]
"""Entity and style names: they go on the poster as copy text, so they are kept short."""
Hex = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]
Ident = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,40}$")]
DETECT_MAX_WORDS = 6


def detector_phrase(value: str) -> str:
    """Open-vocabulary detectors (Grounding DINO's bert-base-uncased, OWLv2's CLIP BPE)
    read short English noun phrases: a Chinese name tokenizes to [UNK] or byte noise and
    the box stops depending on the entity."""
    if len(value.split()) > DETECT_MAX_WORDS:
        raise ValueError(
            f"{len(value.split())} words; a detector phrase names what is drawn in at most "
            f"{DETECT_MAX_WORDS} words (e.g. 'graduation cap on a resume')"
        )
    return value


DetectPhrase = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=2, max_length=48, pattern=r"^[a-z0-9][a-z0-9 ,'&-]*$"
    ),
    AfterValidator(detector_phrase),
]
"""Lower-case ASCII English: what the subject detector is asked to find."""
Box = tuple[float, float, float, float]
Role = Literal["title", "subtitle", "slogan", "date", "price", "place", "cta"]
Orientation = Literal["portrait", "square", "landscape"]

POSTER_PLACEHOLDERS = {
    "style",
    "theme",
    "description",
    "style_descriptors",
    "typography",
    "copy",
    "layout",
}
COPY_PLACEHOLDERS = {"name", "date", "price", "year", "place"}


class EntityText(Strict):
    name: Name
    description: Text


EntityKind = Literal["event", "place", "thing"]
"""What an entity is, so copy templates fit it: one is invited to an event, welcomed at a
place, offered a thing (never `邀你参加词典`, "join us at the dictionary")."""


class Entity(Strict):
    id: Ident
    shape: str
    color: Hex
    detect: DetectPhrase
    zh: EntityText
    en: EntityText
    kind: EntityKind | None = None
    """None: the kind its file names for all its entities."""


class EntityFile(Strict):
    theme: Theme
    kind: EntityKind = "thing"
    """The kind of the file's entities unless one says otherwise."""
    entities: list[Entity] = Field(min_length=1)


class StyleText(Strict):
    name: Name
    descriptors: list[Text] = Field(min_length=1)


class Palette(Strict):
    background: Hex
    primary: Hex
    secondary: Hex
    accent: Hex
    text: Hex


class Typography(Strict):
    weight: Literal["bold", "regular"]
    case: Literal["as_is", "upper", "title"]
    align: Literal["left", "center"]
    title_scale: float = Field(ge=0.5, le=2.0)
    zh: Text
    en: Text


class Style(Strict):
    id: Ident
    zh: StyleText
    en: StyleText
    palette: Palette
    motif: str
    typography: Typography


class StyleFile(Strict):
    styles: list[Style] = Field(min_length=1)


class Layout(Strict):
    """Normalised boxes (x0, y0, x1, y1) in [0, 1]; body lines stack inside `body`."""

    id: Ident
    orientations: list[Orientation] = Field(min_length=1)
    zh: Text
    en: Text
    subject: Box
    title: Box
    body: Box

    @model_validator(mode="after")
    def _boxes(self) -> Layout:
        for name in ("subject", "title", "body"):
            x0, y0, x1, y1 = getattr(self, name)
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise ValueError(f"{name} box {getattr(self, name)} is not inside [0, 1]")
        return self


class LayoutFile(Strict):
    layouts: list[Layout] = Field(min_length=1)


class Bilingual(Strict):
    zh: list[Text] = Field(min_length=1)
    en: list[Text] = Field(min_length=1)


class CopyTheme(Strict):
    roles: list[Role] = Field(min_length=1)
    zh: dict[Role, list[Text]]
    en: dict[Role, list[Text]]
    only_for: dict[Text, list[EntityKind]] = Field(default_factory=dict)
    """Templates that fit some kinds of entity only (an invitation fits an event); every
    other template fits every kind."""

    def templates(self, language: str, role: str, kind: str) -> list[str]:
        """The role's templates that fit an entity of `kind`."""
        return [t for t in getattr(self, language)[role] if kind in self.only_for.get(t, (kind,))]

    @model_validator(mode="after")
    def _roles(self) -> CopyTheme:
        if self.roles[0] != "title":
            raise ValueError("the first role must be title")
        if len(set(self.roles)) != len(self.roles):
            raise ValueError("roles repeat")
        for lang in ("zh", "en"):
            table = getattr(self, lang)
            for role in self.roles:
                if not table.get(role):
                    raise ValueError(f"{lang}.{role}: no templates for a role listed in roles")
        known = {t for lang in ("zh", "en") for ts in getattr(self, lang).values() for t in ts}
        for template in self.only_for:
            if template not in known:
                raise ValueError(f"only_for: {template!r} is none of this theme's templates")
        for kind in EntityKind.__args__:
            for lang in ("zh", "en"):
                for role in self.roles:
                    if not self.templates(lang, role, kind):
                        raise ValueError(f"{lang}.{role}: no template fits a {kind} entity")
        return self


class CopyFile(Strict):
    values: dict[Literal["place"], Bilingual]
    themes: dict[Theme, CopyTheme]


class PosterFile(Strict):
    prompt: Bilingual
    negative: dict[Literal["zh", "en"], Text]
    theme_names: dict[Literal["zh", "en"], dict[Theme, Text]]
    drawn_as: dict[Literal["zh", "en"], dict[str, Name]]
    """The procedural renderer's icon for each entity shape, named: an instruction about one
    of its renders names what it shows (strawberries are drawn as a `fruit`)."""


class InstructionFile(RootModel[dict[str, Bilingual]]):
    """Instruction templates by key. Which keys must exist, and which placeholders each
    may use, is the tasks' to say (each task registry row names its own), so a new task
    brings its wording without a change here."""

    model_config = {"frozen": True}

    def templates(self, key: str, language: str) -> list[str]:
        return getattr(self.root[key], language)


@dataclass(frozen=True)
class Library:
    """Everything the composer and renderer draw from, with one digest for the recipe hash."""

    entities_by_theme: dict[str, list[Entity]]
    styles: list[Style]
    layouts: list[Layout]
    copy: CopyFile
    instructions: InstructionFile
    poster: PosterFile
    digest: str
    folders: Libraries
    """Where the libraries were read from (the prompts folder also holds LLM templates)."""

    def style(self, style_id: str) -> Style:
        return self._styles_by_id()[style_id]

    def layout(self, layout_id: str) -> Layout:
        return next(layout for layout in self.layouts if layout.id == layout_id)

    def entity(self, entity_id: str) -> Entity:
        for entities in self.entities_by_theme.values():
            for entity in entities:
                if entity.id == entity_id:
                    return entity
        raise KeyError(entity_id)

    def _styles_by_id(self) -> dict[str, Style]:
        return {style.id: style for style in self.styles}


M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], path: Path) -> M:
    data = read_yaml(path, LibraryError)
    if not isinstance(data, dict):
        raise LibraryError(
            f"{path}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise LibraryError(validation_message(path, exc, model)) from None


def _placeholders(template: str) -> set[str]:
    """The `{name}` fields of a template. Conversions (`{name!r}`), format specs
    (`{price:>999999999}`, which would build a gigabyte string) and attribute or index
    access (`{name.__class__}`) are refused: a field is a bare name."""
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError as exc:
        raise ValueError(f"template {template!r} has unbalanced braces ({exc})") from None
    for name, spec, conversion in fields:
        if spec or conversion:
            raise ValueError(
                f"placeholder {{{shown(name)}}} has a conversion or format spec: only bare "
                "{name} fields are allowed"
            )
    return {name for name, _, _ in fields}


def _check_templates(path: Path, where: str, templates: list[str], allowed: set[str]) -> None:
    for i, template in enumerate(templates):
        try:
            used = _placeholders(template)
        except ValueError as exc:
            raise LibraryError(f"{path}: {where}[{i}]: {exc}") from None
        unknown = used - allowed
        if unknown:
            name = shown(sorted(unknown)[0])
            raise LibraryError(
                f"{path}: {where}[{i}]: placeholder {{{name}}} is not allowed here",
                fix=f"use only {', '.join('{' + a + '}' for a in sorted(allowed))}",
            )


def _check_unique(path: Path, where: str, values: list[str], what: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        key = value.casefold()
        if key in seen:
            raise LibraryError(f"{path}: {where}[{i}]: duplicate {what} {value!r}")
        seen.add(key)


def load_entities(folder: Path) -> dict[str, list[Entity]]:
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise LibraryError(f"{folder}: no entity library (*.yaml) found")
    by_theme: dict[str, list[Entity]] = {}
    owner: dict[str, Path] = {}
    for path in files:
        parsed = _parse(EntityFile, path)
        if path.stem != parsed.theme:
            raise LibraryError(f"{path}: theme: {parsed.theme!r} does not match the file name")
        for i, entity in enumerate(parsed.entities):
            if entity.shape not in SHAPES:
                raise LibraryError(
                    f"{path}: entities[{i}].shape: unknown shape {entity.shape!r}",
                    fix=f"use one of {', '.join(SHAPES)}",
                )
            if entity.id in owner:
                raise LibraryError(
                    f"{path}: entities[{i}].id: {entity.id!r} is already used in {owner[entity.id]}"
                )
            owner[entity.id] = path
        for lang in ("zh", "en"):
            names = [getattr(e, lang).name for e in parsed.entities]
            _check_unique(path, f"entities[*].{lang}.name", names, "name")
        by_theme[parsed.theme] = [
            e if e.kind else e.model_copy(update={"kind": parsed.kind}) for e in parsed.entities
        ]
    return by_theme


def load_styles(folder: Path) -> tuple[list[Style], list[Layout]]:
    path = folder / "styles.yaml"
    styles = _parse(StyleFile, path).styles
    _check_unique(path, "styles[*].id", [s.id for s in styles], "id")
    for lang in ("zh", "en"):
        _check_unique(
            path, f"styles[*].{lang}.name", [getattr(s, lang).name for s in styles], "name"
        )
    for i, style in enumerate(styles):
        if style.motif not in MOTIFS:
            raise LibraryError(
                f"{path}: styles[{i}].motif: unknown motif {style.motif!r}",
                fix=f"use one of {', '.join(MOTIFS)}",
            )
    layout_path = folder / "layouts.yaml"
    layouts = _parse(LayoutFile, layout_path).layouts
    _check_unique(layout_path, "layouts[*].id", [layout.id for layout in layouts], "id")
    for orientation in ("portrait", "square", "landscape"):
        if not any(orientation in layout.orientations for layout in layouts):
            raise LibraryError(f"{layout_path}: layouts: none suits {orientation} posters")
    return styles, layouts


def load_prompts(
    folder: Path, instructions_used: Mapping[str, set[str]]
) -> tuple[CopyFile, InstructionFile, PosterFile]:
    """`instructions_used`: each instruction key the tasks use, with the placeholders
    its templates may hold."""
    copy_path = folder / "copy.yaml"
    copy = _parse(CopyFile, copy_path)
    for theme, table in copy.themes.items():
        for lang in ("zh", "en"):
            for role, templates in getattr(table, lang).items():
                where = f"themes.{theme}.{lang}.{role}"
                _check_templates(copy_path, where, templates, COPY_PLACEHOLDERS)
    instr_path = folder / "instructions.yaml"
    instructions = _parse(InstructionFile, instr_path)
    for key in instructions.root:
        if key not in instructions_used:
            close = get_close_matches(key, list(instructions_used), n=1, cutoff=0.6)
            raise LibraryError(
                f"{instr_path}: {shown(key)}: no task uses instructions of this name",
                fix=f"did you mean {close[0]}?"
                if close
                else f"use one of {', '.join(sorted(instructions_used))}",
            )
    for key, allowed in instructions_used.items():
        if key not in instructions.root:
            raise LibraryError(
                f"{instr_path}: {key}: missing", fix=f"add {key}: with zh and en templates"
            )
        for lang in ("zh", "en"):
            templates = instructions.templates(key, lang)
            _check_templates(instr_path, f"{key}.{lang}", templates, allowed)
    poster_path = folder / "poster.yaml"
    poster = _parse(PosterFile, poster_path)
    for lang in ("zh", "en"):
        _check_templates(
            poster_path, f"prompt.{lang}", getattr(poster.prompt, lang), POSTER_PLACEHOLDERS
        )
        missing = set(ALL_THEMES) - set(poster.theme_names.get(lang, {}))
        if missing:
            raise LibraryError(
                f"{poster_path}: theme_names.{lang}: no name for {sorted(missing)[0]}"
            )
    if set(poster.negative) != {"zh", "en"}:
        raise LibraryError(f"{poster_path}: negative: needs both zh and en")
    for lang in ("zh", "en"):
        named = poster.drawn_as.get(lang, {})
        if set(named) != set(SHAPES):
            wrong = sorted(set(SHAPES) ^ set(named))[0]
            raise LibraryError(
                f"{poster_path}: drawn_as.{lang}: {wrong!r} is "
                + ("not named" if wrong in SHAPES else "no shape the renderer draws"),
                fix=f"name every shape: {', '.join(SHAPES)}",
            )
    return copy, instructions, poster


CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def cjk_characters(paths: Libraries) -> list[str]:
    """Every distinct Chinese character of the entity, style and prompt files: what a text
    model must read without unknown tokens (names, descriptions, copy, instructions)."""
    text = "".join(
        path.read_text(encoding="utf-8")
        for folder in (paths.entities, paths.styles, paths.prompts)
        for path in sorted(Path(folder).glob("*.yaml"))
    )
    return sorted(set(CJK.findall(text)))


def read_libraries(paths: Libraries, instructions_used: Mapping[str, set[str]]) -> Library:
    """Load and validate every library the recipe names (`instructions_used`: see
    load_prompts; `datapipe.loading.load_libraries` passes the task registry's)."""
    entities = load_entities(paths.entities)
    styles, layouts = load_styles(paths.styles)
    copy, instructions, poster = load_prompts(paths.prompts, instructions_used)
    for theme in entities:
        if theme not in copy.themes:
            raise LibraryError(
                f"{paths.prompts / 'copy.yaml'}: themes: no copy templates for theme {theme!r}"
            )
    content: dict[str, Any] = {
        "entities": {t: [e.model_dump() for e in es] for t, es in sorted(entities.items())},
        "styles": [s.model_dump() for s in styles],
        "layouts": [layout.model_dump() for layout in layouts],
        "copy": copy.model_dump(),
        "instructions": instructions.model_dump(),
        "poster": poster.model_dump(),
    }
    return Library(
        entities_by_theme=entities,
        styles=styles,
        layouts=layouts,
        copy=copy,
        instructions=instructions,
        poster=poster,
        digest=digest(content),
        folders=paths,
    )


@dataclass(frozen=True)
class LoadedRecipe:
    """A validated recipe with its libraries, where it came from, and its hashes."""

    recipe: Recipe
    path: Path
    library: Library

    @property
    def recipe_hash(self) -> str:
        """Covers the resolved recipe and the library contents, but not `execution`,
        `costs` or `coverage`: how many workers ran a stage, what an hour of them cost, or
        what the output is checked against, never changes what it made. A recipe without
        `targets` hashes as it did before targets existed."""
        unset = {"targets"} if self.recipe.targets is None else set()
        excluded = {"execution", "costs", "coverage", *unset}
        recipe = self.recipe.model_dump(mode="json", exclude=excluded)
        return digest({"recipe": recipe, "libs": self.library.digest})

    @property
    def generation_hash(self) -> str:
        """Covers only what decides specs and pixels: ids and seeds derive from it."""
        return digest({"gen": self.recipe.generation_view(), "libs": self.library.digest})
