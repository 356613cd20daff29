"""Text fidelity: does the text check keep good posters and reject every kind of text error?

Compares the verdict of a recipe's text rules with the renderer's truth (the fault it
drew on purpose). Renders posters of every text failure kind the procedural renderer
draws (a digit changed, a look-alike glyph, a malformed glyph, an extra line, a
duplicated line, garbled, missing and truncated text) and good ones, at the cluster
recipe's sizes (pipelines/train.yaml `image`) and with the stylised mix every poster
takes (outline, shadow, tilt, letter-spacing, small text, texture), runs the candidate
stages with the cluster recipe's OCR settings (one thread), and applies its text and
image rules (main thresholds); `--recipe` measures another recipe's operating point at
its own sizes. Prints precision (share of good posters kept) and recall per failure
kind (share rejected), zh and en apart, and the CPU core-seconds per candidate of the
annotate stages. The renderer's truth (the fault it drew) only grades.

    python benchmarks/fidelity.py [--quick] [--json out.json] [--per-cell N] [--recipe R] [--seed S]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _common import ROOT, Figure, Result, main, quickstart_data, write_recipe

KINDS = (
    "digit_changed",
    "lookalike",
    "malformed_glyph",
    "extra_line",
    "duplicated_line",
    "wrong_text",
    "missing_text",
    "truncated",
)
LANGUAGES = ("zh", "en")
RULE_PREFIXES = ("text_", "image_")
"""The rules a text fault must trip (image_* for a truncated file)."""


def load(folder: Path, recipe: Path, seed: int | None = None) -> Any:
    """The quickstart's offline stages at `recipe`'s image sizes and OCR settings; `seed`
    (else the recipe's) draws other specs and posters, a held-out set."""
    from datapipe.loading import load_recipe

    chosen = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    ocr = {k: chosen["stages"]["ocr"][k] for k in ("det_limit_side_len", "det_limit_type")}
    override = {
        "seed": chosen["seed"] if seed is None else seed,
        "image": chosen["image"],
        "groups": {"single": 400, "rescale": 0, "style": 0, "layout": 0},
        "stages": {"ocr": {**ocr, "threads": 1}, "render": {"faults": {"rate": 0.0}}},
    }
    return load_recipe(write_recipe(folder / "fidelity.yaml", quickstart_data(override)))


def rules(recipe: Path) -> dict[str, Any]:
    from datapipe.loading import load_recipe

    thresholds = load_recipe(recipe).recipe.thresholds
    return {k: v for k, v in thresholds.items() if k.startswith(RULE_PREFIXES)}


def specs_by_language(loaded: Any, count: int) -> dict[str, list[Any]]:
    from datapipe.backends.template_composer import TemplateComposer
    from datapipe.plan import plan_groups

    composer = TemplateComposer(loaded)
    out: dict[str, list[Any]] = {lang: [] for lang in LANGUAGES}
    for slot in plan_groups(loaded):
        for spec in composer.compose(slot.to_group()):
            if len(out[spec.language]) < count:
                out[spec.language].append(spec)
        if all(len(v) >= count for v in out.values()):
            break
    return out


def brief(line: dict[str, Any]) -> dict[str, Any]:
    """What explains a line's verdict: its reads' texts and confidences, its status and
    its shape checks' distances, without per-glyph confidences and twins (a tenth of
    the size)."""
    drop = {"box", "exact", "found", "numbers_expected", "numbers_read"}
    out = {k: v for k, v in line.items() if k not in drop}
    out["reads"] = [{k: v for k, v in r.items() if k != "glyphs"} for r in line.get("reads", [])]
    for key in ("shape", "shape_latin"):
        if line.get(key):
            out[key] = {k: v for k, v in line[key].items() if k != "twins"}
    return out


def run(
    quick: bool, per_cell: int | None = None, recipe: str | None = None, seed: int | None = None
) -> Result:
    from datapipe.backends.procedural.renderer import ProceduralRenderer
    from datapipe.records import Candidate, Group, RawRender
    from datapipe.stages.filter import evaluate, image_failed
    from datapipe.stages.registry import build_annotators
    from datapipe.stages.render import encode_render

    cell = per_cell or (4 if quick else 20)
    goods = 2 * cell
    recipe_path = Path(recipe) if recipe else ROOT / "pipelines" / "train.yaml"
    chosen = rules(recipe_path)
    result = Result(
        "fidelity",
        f"text rules of {recipe_path.name} on procedural posters at its sizes: "
        "precision (good kept) and recall per failure kind, zh and en",
    )
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load(Path(tmp), recipe_path, seed)
        renderer = ProceduralRenderer(loaded.library)
        stages = build_annotators(loaded)
        for stage in stages:
            stage.setup()
        specs = specs_by_language(loaded, goods + cell * len(KINDS))
        seconds = {stage.name: 0.0 for stage in stages}
        rows: list[dict[str, Any]] = []
        for language, pool in specs.items():
            plan = [("good", s) for s in pool[:goods]]
            rest = pool[goods:]
            plan += [(k, rest[i * cell + j]) for i, k in enumerate(KINDS) for j in range(cell)]
            for kind, spec in plan:
                drawn = renderer.render(spec, fault=kind)  # the truth stays here: it grades
                candidate = Candidate(spec=spec)
                candidate.raw = RawRender(drawn.image, drawn.file)
                candidate.scores["render.ok"] = 1.0
                encode_render(candidate, 1)
                group = Group(spec.group_id, "single", 0, 0, language, "", candidates=[candidate])
                for stage in stages:
                    began = time.process_time()
                    stage.process_batch([group])
                    seconds[stage.name] += time.process_time() - began
                verdict = evaluate(candidate.scores, chosen, image_failed(candidate))
                fault = drawn.truth.text_fault or {}
                rows.append(
                    {
                        "language": language,
                        "kind": kind,
                        "drawn": fault.get("kind", kind),
                        "size": [spec.width, spec.height],
                        "kept": verdict.keep,
                        "reasons": list(verdict.reasons),
                        "scores": {
                            k: v for k, v in candidate.scores.items() if k.startswith("ocr")
                        },
                        "fault": fault,
                        "lines": [
                            brief(line)
                            for line in candidate.details.get("ocr", {}).get("lines", [])
                        ],
                        "unrequested": candidate.details.get("ocr", {}).get("unrequested", []),
                    }
                )
        for stage in stages:
            stage.teardown()
    total = len(rows)
    per_candidate = {name: s / total for name, s in seconds.items()}
    for language in LANGUAGES:
        good = [r for r in rows if r["language"] == language and r["kind"] == "good"]
        kept = sum(r["kept"] for r in good) / max(1, len(good))
        result.figures.append(
            Figure(f"{language} precision (good kept)", kept, ">= 0.95", note=f"n={len(good)}")
        )
        for kind in KINDS:
            bad = [r for r in rows if r["language"] == language and r["drawn"] == kind]
            caught = sum(not r["kept"] for r in bad) / max(1, len(bad)) if bad else None
            result.figures.append(
                Figure(f"{language} recall {kind}", caught, ">= 0.9", note=f"n={len(bad)}")
            )
    result.figures.append(
        Figure("annotate stages, core-s/candidate", sum(per_candidate.values()), unit="s")
    )
    result.figures.append(Figure("ocr, core-s/candidate", per_candidate.get("ocr"), unit="s"))
    result.raw = {
        "recipe": str(recipe_path),
        "seed": loaded.recipe.seed,
        "rules": list(chosen),
        "seconds": per_candidate,
    }
    result.raw["posters"] = rows
    return result


OPTIONS = {
    "--per-cell": {"type": int, "default": None, "help": "posters per kind and language"},
    "--recipe": {"type": str, "default": None, "help": "whose sizes, OCR and rules (train.yaml)"},
    "--seed": {"type": int, "default": None, "help": "another seed than the recipe's: held out"},
}

if __name__ == "__main__":
    sys.exit(main(run, __doc__, OPTIONS))
