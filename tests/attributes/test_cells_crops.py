"""Crops at a fixed physical scale; clipped, padded or rejected boxes."""

from __future__ import annotations

import numpy as np
import pytest
from cell_support import BACKGROUND, draw_cell

from smearscope.attributes.crops import background_colour, crop_cells


def _disc_diameter(crop: np.ndarray) -> float:
    """Width in pixels of the dark/coloured object on the pale background (its middle row)."""
    row = crop[crop.shape[0] // 2].astype(int)
    inside = np.flatnonzero(np.abs(row - np.array(BACKGROUND)).sum(axis=1) > 60)
    return float(inside[-1] - inside[0] + 1)


def test_a_cell_has_the_same_size_in_crops_from_two_magnifications():
    rng = np.random.default_rng(0)
    # the same 12 um cell captured at 0.1 and at 0.25 um/px
    fine = draw_cell(400, 12 / 0.1, (150, 84, 168), rng, centre=(200, 200))
    coarse = draw_cell(160, 12 / 0.25, (150, 84, 168), rng, centre=(80, 80))
    a = crop_cells(fine, [[140, 140, 260, 260]], 64, 24.0, 0.1)
    b = crop_cells(coarse, [[56, 56, 104, 104]], 64, 24.0, 0.25)
    assert a.scale_mode == b.scale_mode == "physical" and not a.notes
    expected = 64 * 12 / 24  # 12 um of a 24 um crop
    assert _disc_diameter(a.crops[0]) == pytest.approx(expected, abs=2)
    assert _disc_diameter(b.crops[0]) == pytest.approx(expected, abs=2)


def test_unknown_scale_falls_back_to_the_box_and_says_so():
    image = draw_cell(200, 60, (150, 84, 168), np.random.default_rng(1), centre=(100, 100))
    result = crop_cells(image, [[70, 70, 130, 130]], 60, 24.0, None, box_scale=2.0)
    assert result.scale_mode == "box"
    assert "scale unknown" in result.notes[0]
    assert _disc_diameter(result.crops[0]) == pytest.approx(30, abs=2)  # a 60 px box in a 120 px crop


def test_bad_boxes_are_rejected_with_a_reason_and_partly_outside_ones_clipped():
    image = draw_cell(100, 40, (150, 84, 168), np.random.default_rng(2))
    boxes = np.array([
        [30, 30, 70, 70],       # fine
        [40, 40, 40, 60],       # empty
        [200, 200, 240, 240],   # outside
        [np.nan, 0, 10, 10],    # broken
        [-20, 80, 20, 130],     # partly outside: clipped to [0, 80, 20, 100]
    ])
    result = crop_cells(image, boxes, 32, 10.0, 0.5)
    assert result.kept.tolist() == [0, 4]
    reasons = dict(result.rejected)
    assert "empty" in reasons[1]
    assert "outside the 100x100 image" in reasons[2]
    assert "non-finite" in reasons[3]
    assert result.crops.shape == (2, 32, 32, 3) and result.crops.dtype == np.uint8


def test_padding_uses_the_local_background_colour():
    image = np.empty((60, 60, 3), np.uint8)
    image[:] = (200, 180, 190)
    image[25:35, 0:10] = (90, 40, 120)  # a dark object at the left border
    result = crop_cells(image, [[0, 25, 10, 35]], 40, 20.0, 0.5)  # a 40 px window around x=5
    left_columns = result.crops[0][:, :5].reshape(-1, 3)
    assert np.all(np.abs(left_columns.astype(int) - (200, 180, 190)).max(axis=1) <= 1)
    assert background_colour(image).tolist() == [200, 180, 190]


@pytest.mark.parametrize(
    "image, kwargs, message",
    [
        (np.zeros((10, 10), np.uint8), {}, "RGB uint8"),
        (np.zeros((10, 10, 3), np.float32), {}, "RGB uint8"),
        (np.zeros((10, 10, 3), np.uint8), {"um_per_px": -1.0}, "um_per_px must be positive"),
        (np.zeros((10, 10, 3), np.uint8), {"out_size": 0}, "crop size"),
    ],
)
def test_bad_crop_arguments_raise_one_line_errors(image, kwargs, message):
    args = {"out_size": 8, "crop_um": 5.0, "um_per_px": 0.5, **kwargs}
    with pytest.raises(ValueError, match=message):
        crop_cells(image, [[1, 1, 5, 5]], **args)
