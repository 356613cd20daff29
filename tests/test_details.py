"""Typed reads of what stages leave on a candidate, checked on real quickstart renders."""

from __future__ import annotations

import pytest

from datapipe.details import clip_similarity, ocr_lines, phash, phash_distance, subject_box
from datapipe.io.candidate_store import CandidateStore
from datapipe.records import Candidate


@pytest.fixture(scope="module")
def candidates(quickstart_run):
    out = quickstart_run[0]
    return [c for g in CandidateStore(out).load(0) for c in g.candidates]


def test_ocr_lines_match_the_copy_in_order(candidates):
    read = [c for c in candidates if ocr_lines(c)]
    assert len(read) >= len(candidates) // 2
    for candidate in read:
        lines = ocr_lines(candidate)
        assert [line.expected for line in lines] == [c.text for c in candidate.spec.copy]
        for line in lines:
            assert (line.box is not None) == line.found
            if line.box is not None:
                x0, y0, x1, y1 = line.box
                assert 0 <= x0 < x1 <= candidate.spec.width
                assert 0 <= y0 < y1 <= candidate.spec.height


def test_phash_and_its_distance(candidates):
    a, b = candidates[0], candidates[1]
    assert phash_distance(phash(a), phash(a)) == 0
    assert 0 < phash_distance(phash(a), phash(b)) <= 64


def test_missing_details_read_as_none():
    empty = Candidate(spec=None)  # type: ignore[arg-type]  # details only
    assert ocr_lines(empty) == [] and phash(empty) is None and subject_box(empty) is None
    assert clip_similarity(empty, empty) is None


def test_clip_similarity_of_stored_embeddings():
    a, b = Candidate(spec=None), Candidate(spec=None)  # type: ignore[arg-type]  # details only
    a.details["clip"] = {"embedding": [0.6, 0.8]}
    b.details["clip"] = {"embedding": [1.0, 0.0]}
    assert clip_similarity(a, b) == 0.6


def test_subject_box_is_a_tuple(candidates):
    boxes = [subject_box(c) for c in candidates]
    assert any(isinstance(box, tuple) and len(box) == 4 for box in boxes)
