"""OCR reads the renderer's own text back, in both languages, and the verifier judges it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from datapipe.backends.ocr_glyphs import ShapeCheck
from datapipe.backends.ocr_rapidocr import OcrLine, RapidOcrBackend
from datapipe.backends.procedural.renderer import ProceduralRenderer
from datapipe.backends.procedural.text_faults import TEXT_FAULTS
from datapipe.backends.template_composer import TemplateComposer
from datapipe.fonts import font
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.truth_store import TruthStore
from datapipe.plan import plan_groups
from datapipe.records import Candidate, CopyLine
from datapipe.stages.filter import evaluate
from datapipe.stages.ocr import OcrStage, glyph_confidence, judge_shapes, reading_candidates
from datapipe.stages.registry import build_stage
from datapipe.text import letters, ned_similarity, normalize, numbers


def test_ocr_reads_the_renderers_text_in_each_language(quickstart_run):
    out, _ = quickstart_run
    table = CandidateStore(out).read_table()
    faults = TruthStore(out).all_faults()
    lines: dict[str, list[float]] = {"zh": [], "en": []}
    for row in table.select(["key", "language", "meta_json"]).to_pylist():
        if faults[row["key"]] != "good":
            continue
        ocr = json.loads(row["meta_json"])["details"]["ocr"]
        lines[row["language"]].extend(line["ned"] for line in ocr["lines"])
    for language, neds in lines.items():
        assert len(neds) >= 200, language
        share = sum(ned >= 0.9 for ned in neds) / len(neds)
        assert share >= 0.95, (language, share)


def test_normalisation_ignores_spaces_width_and_case():
    assert normalize("限时 八折！") == normalize("限时八折!")
    assert ned_similarity("Summer SALE", "summer sale") == 1.0
    assert ned_similarity("abcd", "abxd") == pytest.approx(0.75)
    assert ned_similarity("", "") == 1.0


def test_a_line_split_in_two_boxes_is_joined():
    read = [
        OcrLine("Summer", 0.99, (10, 10, 60, 30)),
        OcrLine("Sale", 0.99, (70, 12, 110, 31)),
        OcrLine("Jul 1", 0.99, (10, 50, 60, 70)),
    ]
    texts = [text for text, _ in reading_candidates(read)]
    assert "Summer Sale" in texts
    assert "Summer Jul 1" not in texts


KINDS = ("good", *TEXT_FAULTS, "missing_text")
KNOWN_MISSES = {("malformed_glyph", "en")}
"""Seeded cases the verifier keeps although they are broken: a damaged Latin letter the
recogniser still reads with confidence (the shape check scores CJK glyphs only, and the
quickstart takes no shape rule; benchmarks/fidelity.py measures the recall of malformed
glyphs). The zh seed's damage is now drawn visibly (text_faults.VISIBLE_DAMAGE) and
the reads reject it. Pinned, so that a change in either direction shows."""


@pytest.fixture(scope="module")
def verifier(quickstart):
    stage = build_stage(OcrStage, quickstart)
    stage.setup()
    return stage


@pytest.fixture(scope="module")
def first_specs(quickstart):
    """The first single-poster spec of each language, drawn at 768 px on the long side."""
    composer = TemplateComposer(quickstart)
    out = {}
    for slot in plan_groups(quickstart):
        for spec in composer.compose(slot.to_group()):
            scale = 768 / max(spec.width, spec.height)
            sized = dataclasses.replace(
                spec, width=round(spec.width * scale), height=round(spec.height * scale)
            )
            out.setdefault(spec.language, sized)
        if len(out) == 2:
            return out
    raise AssertionError("the quickstart plans posters in both languages")


def verdict(quickstart, verifier, spec, kind="good"):
    drawn = ProceduralRenderer(quickstart.library).render(spec, fault=kind)
    candidate = Candidate(spec=spec)
    verifier.annotate(candidate, drawn.image)
    rules = {k: v for k, v in quickstart.recipe.thresholds.items() if k.startswith("text_")}
    return evaluate(candidate.scores, rules, image_failed=False), candidate


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_verifier_keeps_good_text_and_rejects_each_fault(
    quickstart, verifier, first_specs, kind, language
):
    result, candidate = verdict(quickstart, verifier, first_specs[language], kind)
    expected = kind == "good" or (kind, language) in KNOWN_MISSES
    assert result.keep == expected, (result.reasons, candidate.details["ocr"])
    lines = candidate.details["ocr"]["lines"]
    found = [line for line in lines if line["found"]]
    assert all(len(line["reads"]) in (2, 3) for line in found), "each line is read again"
    expected_reason = {
        "digit_changed": "text_numbers",
        "extra_line": "text_unexpected",
        "duplicated_line": "text_duplicated",
        "missing_text": "text_missing",
    }.get(kind)
    if expected_reason:
        assert expected_reason in result.reasons, result.reasons


def test_numbers_and_letters_compare_as_written_down():
    assert letters("One bite and you’re hooked!") == letters("ONE BITE AND YOU'RE HOOKED")
    assert letters("仅售１９９元，快来") == letters("仅售199元快来")
    assert letters("日") != letters("目") and letters("E") != letters("F")
    assert letters("AT ČITY HALL") == letters("At City Hall")
    assert numbers("BOWLS FROM $12") == ["$12"] != numbers("BOWLS FROM $18")
    assert numbers("2026年11月27日") == ["2026", "11", "27"]
    assert numbers("Save 15.5% by 2026/1/9") == ["15.5%", "2026/1/9"]


class MissesLargeText(RapidOcrBackend):
    """A detector that, at its first scale, misses lines over 150 px tall, as PP-OCR's
    does on a busy poster at 736 px (benchmarks/fidelity.py: a 230 px title)."""

    def read(self, image: Image.Image, coarse: bool = False) -> list[OcrLine]:
        lines = super().read(image, coarse)
        return lines if coarse else [line for line in lines if line.box[3] - line.box[1] < 150]


def test_a_line_the_detector_missed_is_looked_for_again_at_a_coarser_scale(quickstart, first_specs):
    """The title is found on the second look and verified like any line; a line only the
    second look finds that is no copy line does not count as unexpected text."""
    stage = build_stage(OcrStage, quickstart)
    stage.setup()
    stage.backend = stage.reader = MissesLargeText(threads=1)
    image = Image.new("RGB", (1104, 1472), "#fdf3e1")
    draw = ImageDraw.Draw(image)
    draw.text((40, 500), "精华液", font=font("bold", 230), fill=(20, 30, 70))
    draw.text((60, 1000), "好用更好看", font=font("regular", 64), fill=(20, 30, 70))
    draw.text((40, 80), "新品上市", font=font("bold", 200), fill=(20, 30, 70))
    copy = [CopyLine("title", "精华液"), CopyLine("body", "好用更好看")]
    candidate = Candidate(spec=dataclasses.replace(first_specs["zh"], copy=copy))
    stage.annotate(candidate, image)
    title, body = candidate.details["ocr"]["lines"]
    assert (title["detection"], title["status"]) == ("coarse", "ok"), title
    assert (body["detection"], body["status"]) == ("first", "ok"), body
    assert candidate.scores["ocr.missing_lines"] == 0
    assert candidate.scores["ocr.unexpected_lines"] == 0


def test_a_glyph_whose_shape_is_confirmed_does_not_set_the_glyph_confidence():
    """满 read at 0.77 on a clean poster, its shape its character's: the recogniser's
    doubt is the recogniser's. Unconfirmed, the weak glyph counts."""
    reads = [{"text": "报满即止", "glyphs": [0.99, 0.77, 0.98, 0.97]}]
    assert glyph_confidence(reads) == 0.77
    assert glyph_confidence(reads, {(1, "满")}) == 0.97
    assert glyph_confidence(reads, {(2, "满")}) == 0.77  # another place: not this glyph


def test_a_glyph_confirmed_by_its_twin_on_another_line_does_not_set_the_glyph_confidence():
    """满 drawn 0.3 further from the references than its line's median, and read at 0.7,
    but drawn like the 满 of the next line: the font's design, confirmed once twins are
    matched across the poster's lines. Without the twin the weak glyph counts (the digit,
    which the CJK check does not score, counts throughout)."""
    rng = np.random.default_rng(3)

    def ink() -> np.ndarray:
        v = rng.normal(size=(32, 32)).astype(np.float32)
        return v / np.linalg.norm(v)

    def line(text: str, inks: list[np.ndarray]) -> dict[str, Any]:
        places = [k for k, c in enumerate(text) if not c.isdigit()]
        chars = "".join(text[k] for k in places)
        distances = [0.32 if c == "满" else 0.02 for c in chars]
        check = ShapeCheck(chars, distances, places, heights=[40.0] * len(chars), inks=inks)
        glyphs = [0.7 if c == "满" else 0.95 if c.isdigit() else 0.99 for c in text]
        reads = [{"view": "page", "text": text}, {"view": "tight", "text": text, "glyphs": glyphs}]
        shapes = {"cjk": check, "latin": ShapeCheck("", [])}
        return {"expected": text, "found": True, "reads": reads, "shapes": shapes}

    design = ink()
    for second, expected in ((design, [0.95, 0.95]), (ink(), [0.7, 0.7])):
        rows = [
            line("报满3件", [ink(), design, ink()]),
            line("满额5折", [second, ink(), ink()]),
        ]
        judge_shapes(rows)
        assert [row["glyph_confidence"] for row in rows] == expected, rows
        assert (rows[0]["shape"]["twins"][1] == 0.0) == (second is design)
