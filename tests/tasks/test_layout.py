"""The layout check places lines by row and column, not by how the copy is set.

A layout group shares one layout; its styles set the copy flush left or centred. One
member drawn in a flush-left style and one in a centred style hold the same layout, so
each fills every slot of the other, as detected (OCR line boxes, the subject mask).
"""

from __future__ import annotations

import dataclasses

import pytest
from helpers import annotate_and_filter, first_group

from datapipe.details import ocr_lines
from datapipe.tasks.layout import layout_match

ALIGNED = {"left": "minimalist", "center": "retro"}
"""A style of the library that sets its copy flush left, and one that centres it."""


@pytest.fixture(scope="module")
def set_two_ways(quickstart):
    group = first_group(quickstart, "layout")
    members = [
        dataclasses.replace(c, spec=dataclasses.replace(c.spec, style_id=style))
        for c, style in zip(group.candidates[:2], ALIGNED.values(), strict=True)
    ]
    (group,) = annotate_and_filter(quickstart, [dataclasses.replace(group, candidates=members)])
    for candidate in group.candidates:
        assert all(line.found for line in ocr_lines(candidate)), candidate.details["ocr"]
        assert candidate.details["subject"]["box"]
    return group.candidates


def test_flush_left_and_centred_copy_fill_the_same_slots(quickstart, set_two_ways):
    left, centred = set_two_ways
    lines = {c.key: {line.role: line.box for line in ocr_lines(c)} for c in set_two_ways}
    shifted = [r for r, box in lines[left.key].items() if box[0] != lines[centred.key][r][0]]
    assert shifted, lines  # the two settings do put the lines elsewhere
    tolerance = quickstart.recipe.tasks.layout.tolerance
    assert layout_match(left, centred, tolerance) == 1.0
    assert layout_match(centred, left, tolerance) == 1.0


def in_half(candidate, half: int):
    """The candidate as if OCR had read its copy squeezed into the left (0) or right (1)
    half of the poster: a text column beside the subject, on one side or the other."""
    ocr, width = candidate.details["ocr"], candidate.spec.width
    lines = [
        {**row, "box": [row["box"][0] // 2 + half * width // 2, row["box"][1],
                        row["box"][2] // 2 + half * width // 2, row["box"][3]]}
        for row in ocr["lines"]
    ]  # fmt: skip
    details = {**candidate.details, "ocr": {**ocr, "lines": lines}}
    return dataclasses.replace(candidate, details=details)


def test_copy_in_the_other_column_leaves_its_slots(quickstart, set_two_ways):
    left, centred = set_two_ways
    tolerance = quickstart.recipe.tasks.layout.tolerance
    only_the_subject = 1 / (len(ocr_lines(left)) + 1)
    for half in (0, 1):
        assert layout_match(in_half(left, half), in_half(centred, half), tolerance) == 1.0
        assert layout_match(in_half(left, half), in_half(centred, 1 - half), tolerance) == (
            round(only_the_subject, 4)
        )
