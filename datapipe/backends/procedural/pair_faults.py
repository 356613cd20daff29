"""Pair failures drawn on purpose, so the pair checks can be graded.

A diffusion model asked for the same poster at two ratios may draw another subject,
other text or other colours; asked for a poster in a reference's layout or style it may
move the elements, pick another palette or motif, or all but copy the reference. The
procedural renderer draws these into one member of a rescale, layout or style group
(chosen from the group's first seed and the recipe's `faults.pair_rate`, never carried
by a spec), and labels the render's truth with the kind. Only the fidelity benchmark
and tests read the label; the pair checks must find the failure from the pixels.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL.ImageColor import getrgb

from datapipe.hashing import derive_seed
from datapipe.libraries import Library, Palette, Style
from datapipe.records import CopyLine, PromptSpec

PAIR_FAULTS: dict[str, tuple[str, ...]] = {
    "rescale": ("other_subject", "text_changed", "colours_changed"),
    "layout": ("moved", "copies_reference"),
    "style": ("other_palette", "other_motif", "copies_reference"),
}
"""group kind -> the pair failures drawn into it."""

PALETTE_APART = 150
"""Sum of RGB differences between two grounds for a palette to count as another."""
QUIET_MOTIFS = frozenset({"plain", "gradient", "grain"})
"""Grounds with no pattern to see: one swapped for another is no other motif to the eye
(and a grain motif is what the renderer's textured look draws on any poster), so
`other_motif` draws a motif of another kind."""
SLOT_MOVES = {"title": "subject", "subject": "body", "body": "title"}
"""`moved`: each element drawn in another element's slot."""


@dataclass
class PairDrawing:
    """How one member is drawn instead of as its spec says."""

    kind: str
    spec: PromptSpec
    """The spec to draw (another subject, other copy, or the copied reference's)."""
    style: Style | None = None
    """Another palette or motif, where the fault is one."""
    slots: dict[str, str] | None = None
    """element -> the slot it is drawn in, where the fault moves elements."""
    copied: str | None = None
    """The spec id of the member drawn again, for `copies_reference`."""


def plan_pair_faults(
    specs: list[PromptSpec], library: Library, rate: float, kinds: list[str] | None = None
) -> dict[str, PairDrawing]:
    """spec id -> how that member is drawn, for the groups among `specs` drawn with a pair
    failure. Each group's choice depends on its own first member only."""
    groups: dict[str, list[PromptSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.group_id, []).append(spec)
    out: dict[str, PairDrawing] = {}
    for members in groups.values():
        members = sorted(members, key=lambda s: s.member)
        first = members[0]
        allowed = [k for k in PAIR_FAULTS.get(first.group_kind, ()) if kinds is None or k in kinds]
        if len(members) < 2 or not allowed or rate <= 0:
            continue
        rng = random.Random(derive_seed(first.seed, first.group_id, "pair_fault"))
        if rng.random() >= rate:
            continue
        kind = rng.choice(allowed)
        index = rng.randrange(len(members))
        target = members[index]
        reference = members[(index + 1) % len(members)]
        out[target.spec_id] = _drawing(kind, target, reference, library, rng)
    return out


def _drawing(
    kind: str, spec: PromptSpec, reference: PromptSpec, library: Library, rng: random.Random
) -> PairDrawing:
    style = library.style(spec.style_id)
    if kind == "other_subject":
        others = [
            e
            for entities in library.entities_by_theme.values()
            for e in entities
            if e.shape != spec.entity_shape
        ]
        other = rng.choice(others)
        return PairDrawing(
            kind, dataclasses.replace(spec, entity_shape=other.shape, entity_color=other.color)
        )
    if kind == "text_changed":  # one line cut short, as a model that lost its end would
        line = rng.randrange(len(spec.copy))
        copy = [
            CopyLine(c.role, c.text[: max(1, len(c.text) // 2)] if i == line else c.text)
            for i, c in enumerate(spec.copy)
        ]
        return PairDrawing(kind, dataclasses.replace(spec, copy=copy))
    if kind in ("colours_changed", "other_palette"):
        other = _other_style(library, style, rng, lambda s: _apart(s.palette, style.palette))
        return PairDrawing(kind, spec, style.model_copy(update={"palette": other.palette}))
    if kind == "other_motif":
        other = _other_style(library, style, rng, lambda s: _other_motif(s.motif, style.motif))
        return PairDrawing(kind, spec, style.model_copy(update={"motif": other.motif}))
    if kind == "moved":
        return PairDrawing(kind, spec, slots=dict(SLOT_MOVES))
    if kind == "copies_reference":  # the reference's picture, with this member's copy
        copied = dataclasses.replace(
            reference,
            copy=spec.copy,
            spec_id=spec.spec_id,
            member=spec.member,
            width=spec.width,
            height=spec.height,
            aspect_ratio=spec.aspect_ratio,
        )
        return PairDrawing(kind, copied, copied=reference.spec_id)
    valid = sorted({k for kinds in PAIR_FAULTS.values() for k in kinds})
    raise ValueError(f"unknown pair fault {kind!r}; valid: {', '.join(valid)}")


def _apart(a: Palette, b: Palette) -> bool:
    """Another palette, not a near one: the grounds' colours differ plainly."""
    pairs = zip(getrgb(a.background), getrgb(b.background), strict=True)
    return sum(abs(x - y) for x, y in pairs) > PALETTE_APART


def _other_motif(a: str, b: str) -> bool:
    return a != b and not {a, b} <= QUIET_MOTIFS


def _other_style(
    library: Library, style: Style, rng: random.Random, differs: Callable[[Style], bool]
) -> Style:
    return rng.choice([s for s in library.styles if s.id != style.id and differs(s)])
