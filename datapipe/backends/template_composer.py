"""The offline prompt composer: groups of PromptSpecs from the libraries and templates.

All randomness comes from one `random.Random` seeded by the group id, so a group's
specs depend on nothing but the recipe and the group's place in the plan. The copy
text chosen here is what must appear on the poster, verbatim, in the sample language.
"""

from __future__ import annotations

import random

from datapipe.hashing import derive_seed
from datapipe.libraries import Entity, Layout, LoadedRecipe, Style
from datapipe.records import CopyLine, Group, PromptSpec

MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PRICES = (9, 19, 29, 39, 49, 59, 69, 79, 99, 128, 199, 299)
COPY_JOIN = {"zh": "、", "en": ", "}
QUOTE = {"zh": ("“", "”"), "en": ('"', '"')}


def pair_split(seed: int, entity_id: str, style_id: str, bench_share: float) -> str:
    """Which split may use an entity x style pair: a fixed partition of all pairs, so the
    bench never shows a pair the train split has, whatever order groups are made in."""
    draw = derive_seed(seed, "pair-split", entity_id, style_id) / 2**31
    return "bench" if draw < bench_share else "train"


def orientation(ratio: str) -> str:
    w, h = (int(x) for x in ratio.split(":"))
    if h > w * 1.1:
        return "portrait"
    if w > h * 1.1:
        return "landscape"
    return "square"


def apply_case(text: str, case: str, language: str) -> str:
    """English case from the style's typography; Chinese has none."""
    if language != "en" or case == "as_is":
        return text
    if case == "upper":
        return text.upper()
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


def quote_copy(lines: list[CopyLine], language: str) -> str:
    left, right = QUOTE[language]
    return COPY_JOIN[language].join(f"{left}{line.text}{right}" for line in lines)


class TemplateComposer:
    """Composes the specs of one group at a time."""

    def __init__(self, loaded: LoadedRecipe) -> None:
        self.loaded = loaded
        self.recipe = loaded.recipe
        self.library = loaded.library

    def compose(self, group: Group) -> list[PromptSpec]:
        rng = random.Random(derive_seed(self.loaded.generation_hash, group.group_id, "compose"))
        entities = self.library.entities_by_theme[group.theme]
        styles = self.library.styles
        ratios = self.recipe.image.aspect_ratios
        kind = group.kind
        split = group.split
        if kind == "single":
            ratio = rng.choice(ratios)
            entity = rng.choice(entities)
            plans = [
                (entity, rng.choice(self._styles(entity, split)), self._layout(rng, ratio), ratio)
            ]
        elif kind == "rescale":
            entity = rng.choice(entities)
            style = rng.choice(self._styles(entity, split))
            first, second = self._two_ratios(rng, ratios)
            plans = [
                (entity, style, self._layout(rng, first), first),
                (entity, style, self._layout(rng, second), second),
            ]
        elif kind == "style":
            size = self.recipe.group_size.style
            style = rng.choice(
                [s for s in styles if len(self._entities(entities, s, split)) >= size]
            )
            members = rng.sample(self._entities(entities, style, split), size)
            member_ratios = [rng.choice(ratios) for _ in members]
            plans = [
                (e, style, self._layout(rng, r), r)
                for e, r in zip(members, member_ratios, strict=True)
            ]
        elif kind == "layout":
            ratio = rng.choice(ratios)
            layout = self._layout(rng, ratio)
            members = rng.sample(entities, self.recipe.group_size.layout)
            if self.recipe.bench is None:
                chosen_styles = rng.sample(styles, len(members))
            else:  # each member's entity x style pair must belong to the group's split
                chosen_styles = []
                for entity in members:
                    free = [s for s in self._styles(entity, split) if s not in chosen_styles]
                    chosen_styles.append(rng.choice(free))
            plans = [(e, s, layout, ratio) for e, s in zip(members, chosen_styles, strict=True)]
        else:
            raise ValueError(f"group {group.group_id}: unknown group kind {kind!r}")

        shared_copy = (
            self._copy(rng, group, plans[0][0], plans[0][1]) if kind == "rescale" else None
        )
        shared_seed = derive_seed(self.loaded.generation_hash, group.group_id, "render")
        specs = []
        for member, (entity, style, layout, ratio) in enumerate(plans):
            copy = shared_copy or self._copy(rng, group, entity, style)
            seed = (
                shared_seed
                if kind == "rescale"
                else derive_seed(self.loaded.generation_hash, group.group_id, member)
            )
            specs.append(self._spec(group, member, entity, style, layout, ratio, copy, seed, rng))
        return specs

    def _styles(self, entity: Entity, split: str) -> list[Style]:
        """The styles this split may pair with `entity` (all of them without a bench)."""
        return [s for s in self.library.styles if self._pair_allowed(entity, s, split)]

    def _entities(self, entities: list[Entity], style: Style, split: str) -> list[Entity]:
        return [e for e in entities if self._pair_allowed(e, style, split)]

    def _pair_allowed(self, entity: Entity, style: Style, split: str) -> bool:
        bench = self.recipe.bench
        if bench is None:
            return True
        return pair_split(self.recipe.seed, entity.id, style.id, bench.pair_share) == split

    def _layout(self, rng: random.Random, ratio: str) -> Layout:
        shape = orientation(ratio)
        return rng.choice([lay for lay in self.library.layouts if shape in lay.orientations])

    @staticmethod
    def _two_ratios(rng: random.Random, ratios: list[str]) -> tuple[str, str]:
        """Two different ratios, preferring two different orientations."""
        pairs = [(a, b) for a in ratios for b in ratios if a != b]
        contrasting = [(a, b) for a, b in pairs if orientation(a) != orientation(b)]
        return rng.choice(contrasting or pairs)

    def _copy(
        self, rng: random.Random, group: Group, entity: Entity, style: Style
    ) -> list[CopyLine]:
        lang = group.language
        table = self.library.copy.themes[group.theme]
        kind = entity.kind or "thing"
        year = rng.choice((2026, 2027))
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        price = rng.choice(PRICES)
        values = {
            "name": getattr(entity, lang).name,
            "year": str(year),
            "date": f"{year}年{month}月{day}日"
            if lang == "zh"
            else f"{MONTHS_EN[month - 1]} {day}, {year}",
            "price": str(price) if lang == "zh" else f"${price}",
            "place": rng.choice(getattr(self.library.copy.values["place"], lang)),
        }
        lines = []
        for role in table.roles:
            text = rng.choice(table.templates(lang, role, kind)).format(**values)
            lines.append(CopyLine(role=role, text=apply_case(text, style.typography.case, lang)))
        return lines

    def _spec(
        self,
        group: Group,
        member: int,
        entity: Entity,
        style: Style,
        layout: Layout,
        ratio: str,
        copy: list[CopyLine],
        seed: int,
        rng: random.Random,
    ) -> PromptSpec:
        lang = group.language
        poster = self.library.poster
        localized_style = getattr(style, lang)
        width, height = self.recipe.image.size_for(ratio)
        prompt = rng.choice(getattr(poster.prompt, lang)).format(
            style=localized_style.name,
            theme=poster.theme_names[lang][group.theme],
            description=getattr(entity, lang).description,
            style_descriptors=COPY_JOIN[lang].join(localized_style.descriptors),
            typography=getattr(style.typography, lang),
            copy=quote_copy(copy, lang),
            layout=getattr(layout, lang),
        )
        return PromptSpec(
            spec_id=f"{group.group_id}-{member}",
            group_id=group.group_id,
            group_kind=group.kind,
            member=member,
            language=lang,
            theme=group.theme,
            entity_id=entity.id,
            entity_name=getattr(entity, lang).name,
            entity_description=getattr(entity, lang).description,
            entity_shape=entity.shape,
            entity_color=entity.color,
            style_id=style.id,
            style_name=localized_style.name,
            layout_id=layout.id,
            aspect_ratio=ratio,
            width=width,
            height=height,
            copy=copy,
            prompt=prompt,
            negative_prompt=poster.negative[lang],
            seed=seed,
            entity_detect=entity.detect,
        )
