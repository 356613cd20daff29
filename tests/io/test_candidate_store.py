"""The candidate store keeps every render and every score, and gives them back."""

from __future__ import annotations

import pyarrow.parquet as pq
from helpers import annotate_and_filter, first_group, with_variant

from datapipe.io.candidate_store import CandidateStore


def two_groups(quickstart):
    """A good single poster and a truncated render from another group: distinct keys."""
    good = with_variant(first_group(quickstart, "single"), "good")
    broken = with_variant(first_group(quickstart, "layout"), "truncated")
    return annotate_and_filter(quickstart, [good, broken])


def test_commit_then_load_round_trips(tmp_path, quickstart):
    groups = two_groups(quickstart)
    for group in groups:
        for candidate in group.candidates:
            candidate.verdict = None  # the store is written before the filter runs
    store = CandidateStore(tmp_path)
    assert not store.is_committed(0)
    assert store.commit(0, groups) == 2
    assert store.is_committed(0)
    loaded = store.load(0)
    originals = [c for g in groups for c in g.candidates]
    back = [c for g in loaded for c in g.candidates]
    assert [c.key for c in back] == [c.key for c in originals]
    for before, after in zip(originals, back, strict=True):
        assert after.spec == before.spec
        assert after.image == before.image and after.subject_mask == before.subject_mask
        assert after.scores == before.scores
        assert after.details == before.details


def test_parquet_has_a_column_per_score_and_keeps_rejected_renders(tmp_path, quickstart):
    groups = two_groups(quickstart)
    store = CandidateStore(tmp_path)
    store.commit(3, groups)
    table = pq.read_table(tmp_path / "candidates" / "cand-000003.parquet")
    assert table.num_rows == 2
    assert "score.ocr.min_line_ned" in table.column_names
    rows = table.to_pylist()
    assert "variant" not in rows[1] and "unreadable" in rows[1]["image_error"]  # truth apart
    assert rows[1]["score.ocr.min_line_ned"] is None
    assert rows[0]["score.ocr.min_line_ned"] >= 0.9
