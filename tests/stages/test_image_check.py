"""Bad image files become recorded rejections, never crashes."""

from __future__ import annotations

import dataclasses
import io

import pytest
from helpers import annotate_and_filter, first_group
from PIL import Image

from datapipe.images import encode_png


def bad_images(spec) -> dict[str, bytes]:
    good = Image.new("RGB", (spec.width, spec.height), (200, 30, 30))
    png = encode_png(good)
    cmyk = io.BytesIO()
    good.convert("CMYK").save(cmyk, format="JPEG")
    return {
        "truncated": png[: len(png) // 3],
        "zero_size": b"",
        "not_an_image": b"this is text, not a PNG",
        "wrong_mode_rgba": encode_png(good.convert("RGBA")),
        "wrong_mode_cmyk": cmyk.getvalue(),
        "wrong_size": encode_png(good.resize((spec.width // 2, spec.height))),
    }


EXPECTED = {
    "truncated": "image_unreadable",
    "zero_size": "image_empty",
    "not_an_image": "image_unreadable",
    "wrong_mode_rgba": "image_wrong_mode",
    "wrong_mode_cmyk": "image_wrong_mode",
    "wrong_size": "image_wrong_size",
}


@pytest.fixture(scope="module")
def judged(quickstart):
    group = first_group(quickstart)
    rendered = annotate_and_filter(quickstart, [group])[0].candidates[0]
    groups = []
    for data in bad_images(rendered.spec).values():
        candidate = dataclasses.replace(rendered, image=data, scores={"render.ok": 1.0}, details={})
        groups.append(dataclasses.replace(group, candidates=[candidate]))
    judged = annotate_and_filter(quickstart, groups, render=False)
    return dict(zip(bad_images(rendered.spec), (g.candidates[0] for g in judged), strict=True))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_image_is_a_recorded_rejection(judged, name):
    candidate = judged[name]
    assert not candidate.verdict.keep
    assert EXPECTED[name] in candidate.verdict.reasons, candidate.verdict


def test_unreadable_images_carry_the_error_and_skip_annotation(judged):
    candidate = judged["truncated"]
    assert "unreadable" in candidate.details["image"]["error"]
    assert "ocr.min_line_ned" not in candidate.scores
    assert candidate.verdict.reasons == ["image_unreadable"]
