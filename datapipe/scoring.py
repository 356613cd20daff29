"""Score one image file the way the pipeline scores a render: annotate, then filter.

    from datapipe.scoring import Scorer

    scorer = Scorer("pipelines/quickstart.yaml")       # stages load once, score many
    result = scorer.score("poster.png", ["Title", "Body line"])
    result.keep, result.reasons, result.scores, result.details

The image becomes a Candidate with the file's bytes exactly as they are, so a broken
file is a recorded rejection (image_unreadable, image_empty ...), never a crash. The
spec is built from the arguments: width and height from the image, copy lines from
the texts (roles title, then body), language from the argument or the script of the
text.

Every subject backend finds the subject from the image itself, so a file is judged on
the same evidence as a render. A rule on a score that no annotate stage writes (a
render-only score) is listed under `not_evaluated` with the reason, `complete` is
False, and `keep` says what the evaluated rules decided: such rules neither pass nor
fail silently. The same holds for the rules of stages left out on purpose (`stages`):
the cluster recipe's text rules can be applied on a machine without its SAM-2 and CLIP
weights by scoring with the image and OCR stages alone.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from datapipe.bundled import data_root
from datapipe.errors import DatapipeError
from datapipe.libraries import LoadedRecipe
from datapipe.loading import load_recipe
from datapipe.records import Candidate, CopyLine, Group, PromptSpec
from datapipe.runner.driver import StageChain
from datapipe.stages.base import Stage
from datapipe.stages.filter import evaluate, image_failed
from datapipe.stages.registry import annotator_classes, build_stage

LANGUAGES = ("zh", "en")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def default_recipe() -> Path | None:
    """The quickstart recipe: the source checkout's, else the one inside the wheel."""
    root = data_root()
    return root / "pipelines" / "quickstart.yaml" if root is not None else None


def guess_language(texts: list[str]) -> str:
    return "zh" if any(_CJK.search(t) for t in texts) else "en"


def probe_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header; (0, 0) when not even the header reads."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # the image stage records why; here only the size is wanted
        return (0, 0)


def _read(path: str | Path, what: str) -> bytes:
    p = Path(path)
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise DatapipeError(f"{what} {p} does not exist") from None
    except IsADirectoryError:
        raise DatapipeError(f"{what} {p} is a directory, not a file") from None
    except OSError as exc:
        raise DatapipeError(f"{what} {p}: cannot read ({exc.strerror})") from None


@dataclass
class RuleResult:
    """One recipe threshold applied to this image."""

    reason: str
    score: str
    min: float | None
    max: float | None
    value: float | None
    status: str
    """pass, fail, n/a (score is None: not applicable), skipped (the image did not
    decode, so it was not annotated) or not evaluated (see ScoreResult.not_evaluated)."""
    detail: str = ""


@dataclass
class ScoreResult:
    keep: bool
    """What the evaluated rules decided (see `complete`)."""
    complete: bool
    """False when some rules could not be evaluated on this input (`not_evaluated`)."""
    reasons: list[str]
    details: dict[str, str]
    """reason -> what failed, worded as in rejects.parquet."""
    not_evaluated: dict[str, str]
    """reason -> why the rule could not be evaluated, and how to make it so."""
    scores: dict[str, float | None]
    rules: list[RuleResult]
    stages: dict[str, Any]
    """What each stage recorded (OCR lines read, subject box, image mode, errors ...)."""
    spec: dict[str, Any]
    recipe: str
    recipe_hash: str
    image: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.reasons:
            return "reject"
        return "keep" if self.complete else "keep on the rules evaluated"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"keep": self.keep, "verdict": self.verdict, **data}


DECODES = "image"
"""The stage that decodes the file: every other stage reads what it decoded."""


class Scorer:
    """The recipe's annotate stages and filter, set up once, for one image at a time.
    `stages` names the annotate stages to run (the image stage always runs); the rules
    on the scores of the others are not evaluated, and say so."""

    def __init__(
        self, recipe: LoadedRecipe | str | Path | None = None, stages: Sequence[str] | None = None
    ) -> None:
        if recipe is None:
            found = default_recipe()
            if found is None:
                raise DatapipeError(
                    "no default recipe: neither a source checkout nor the installed package "
                    "holds pipelines/quickstart.yaml",
                    fix="pass --recipe RECIPE.yaml, or reinstall datapipe",
                )
            recipe = found
        self.loaded = recipe if isinstance(recipe, LoadedRecipe) else load_recipe(recipe)
        self.recipe_stages = annotator_classes(self.loaded.recipe)
        names = [cls.name for cls in self.recipe_stages]
        unknown = sorted(set(stages or ()) - set(names))
        if unknown:
            raise DatapipeError(
                f"no annotate stage named {', '.join(map(repr, unknown))} in this recipe",
                where=str(self.loaded.path),
                fix=f"choose among {', '.join(names)}",
            )
        chosen = set(names) if stages is None else {DECODES, *stages}
        self.classes = [cls for cls in self.recipe_stages if cls.name in chosen]
        self._chain = StageChain(lambda: [build_stage(cls, self.loaded) for cls in self.classes])

    @property
    def stages(self) -> list[Stage]:
        return self._chain.stages

    def close(self) -> None:
        self._chain.teardown()

    @staticmethod
    def candidate(
        data: bytes,
        texts: list[str],
        entity: str | None,
        language: str,
    ) -> Candidate:
        width, height = probe_size(data)
        ratio = "?"
        if width and height:
            g = math.gcd(width, height)
            ratio = f"{width // g}:{height // g}"
        entity_name = entity or ""
        spec = PromptSpec(
            spec_id=f"score-{hashlib.sha256(data).hexdigest()[:12]}",
            group_id="score",
            group_kind="single",
            member=0,
            language=language,
            theme="",
            entity_id=re.sub(r"[^a-z0-9]+", "-", entity_name.lower()).strip("-"),
            entity_name=entity_name,
            entity_description="",
            entity_shape="",
            entity_color="",
            style_id="",
            style_name="",
            layout_id="",
            aspect_ratio=ratio,
            width=width,
            height=height,
            copy=[CopyLine("title" if i == 0 else "body", t) for i, t in enumerate(texts)],
            prompt="",
            negative_prompt="",
            seed=0,
            entity_detect=entity_name,
        )
        candidate = Candidate(spec=spec, image=data)
        # The file stands in for the render: the render stage's one score is that it exists.
        candidate.scores["render.ok"] = 1.0
        candidate.details["render"] = {"source": "file"}
        candidate.render = {"backend": "file", "width": width, "height": height}
        return candidate

    def score(
        self,
        image: bytes | str | Path,
        texts: list[str],
        entity: str | None = None,
        language: str | None = None,
    ) -> ScoreResult:
        """Annotate and filter one image; `image` is bytes or a file path."""
        name = "" if isinstance(image, bytes) else str(image)
        data = image if isinstance(image, bytes) else _read(image, "image")
        lang = language or guess_language(texts)
        if lang not in LANGUAGES:
            raise DatapipeError(f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
        candidate = self.candidate(data, list(texts), entity, lang)
        group = Group("score", "single", 0, 0, lang, "", candidates=[candidate])
        self._chain.run([group])
        return self.judge(candidate, name)

    def judge(self, candidate: Candidate, name: str = "") -> ScoreResult:
        recipe = self.loaded.recipe
        produced = {s for cls in self.classes for s in cls.produces} | {"render.ok"}
        left_out = {s: cls.name for cls in self.recipe_stages for s in cls.produces}
        not_evaluated: dict[str, str] = {}
        notes: list[str] = []
        for reason, rule in recipe.thresholds.items():
            if rule.score in produced:
                continue
            if rule.score in left_out:
                not_evaluated[reason] = (
                    f"{rule.score} is written by the {left_out[rule.score]} stage, which was "
                    f"not run (stages run: {', '.join(cls.name for cls in self.classes)})"
                )
            else:
                not_evaluated[reason] = (
                    f"{rule.score} is written by a stage that does not run on an image file"
                )
        rules = {r: rule for r, rule in recipe.thresholds.items() if r not in not_evaluated}
        failed = image_failed(candidate)
        verdict = evaluate(candidate.scores, rules, failed)
        results = []
        for reason, rule in recipe.thresholds.items():
            value = candidate.scores.get(rule.score)
            if reason in not_evaluated:
                status, detail = "not evaluated", not_evaluated[reason]
            elif reason in verdict.reasons:
                status, detail = "fail", verdict.details.get(reason, "")
            elif rule.score not in candidate.scores and failed:
                status, detail = "skipped", "the image did not decode, so it was not annotated"
            elif value is None:
                status, detail = "n/a", f"{rule.score} does not apply here"
            else:
                status, detail = "pass", ""
            results.append(
                RuleResult(reason, rule.score, rule.min, rule.max, value, status, detail)
            )
        for stage, info in sorted(candidate.details.items()):
            if isinstance(info, dict) and info.get("error"):
                notes.append(f"{stage}: {info['error']}")
        spec = candidate.spec
        return ScoreResult(
            keep=verdict.keep,
            complete=not not_evaluated,
            reasons=list(verdict.reasons),
            details=dict(verdict.details),
            not_evaluated=not_evaluated,
            scores=dict(sorted(candidate.scores.items())),
            rules=results,
            stages=candidate.details,
            spec={
                "language": spec.language,
                "entity": spec.entity_name,
                "width": spec.width,
                "height": spec.height,
                "copy": [asdict(line) for line in spec.copy],
                "mask": candidate.subject_mask is not None,
                "bytes": len(candidate.image),
            },
            recipe=str(self.loaded.path),
            recipe_hash=self.loaded.recipe_hash,
            image=name,
            notes=notes,
        )


def score_image(
    image: bytes | str | Path,
    texts: list[str],
    entity: str | None = None,
    language: str | None = None,
    recipe: LoadedRecipe | str | Path | None = None,
    stages: Sequence[str] | None = None,
) -> ScoreResult:
    """One-off scoring; use a `Scorer` to score many images without reloading models."""
    scorer = Scorer(recipe, stages)
    try:
        return scorer.score(image, texts, entity=entity, language=language)
    finally:
        scorer.close()
