"""fill's mask dilation is exactly a square max filter."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from datapipe.tasks.fill import dilate


@pytest.mark.parametrize("seed", range(8))
def test_dilate_equals_a_square_max_filter(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 120, 2)
    mask = rng.random((height, width)) < rng.choice([0.001, 0.02, 0.3])
    px = int(rng.integers(1, 12))
    image = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
    expected = np.asarray(image.filter(ImageFilter.MaxFilter(2 * px + 1))) > 127
    assert np.array_equal(dilate(mask, px), expected)


def test_no_dilation_is_the_mask_itself():
    mask = np.eye(5, dtype=bool)
    assert dilate(mask, 0) is mask
