"""OCR reads the renderer's own text back, in both languages."""

from __future__ import annotations

import json

import pytest

from datapipe.backends.ocr_rapidocr import OcrLine
from datapipe.io.candidate_store import CandidateStore
from datapipe.io.truth_store import TruthStore
from datapipe.stages.ocr import reading_candidates
from datapipe.text import ned_similarity, normalize


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
