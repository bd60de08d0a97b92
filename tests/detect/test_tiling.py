"""Tile geometry: complete coverage, tiles inside the image, guaranteed overlap."""

from __future__ import annotations

import numpy as np
import pytest

from smearscope.detect.tiling import tile_boxes

SIZES = [
    (1, 1, 640, 128),
    (1, 5000, 640, 128),
    (5000, 1, 640, 128),
    (300, 200, 640, 128),
    (640, 640, 640, 128),
    (641, 640, 640, 128),
    (1152, 1152, 640, 128),  # exact multiple of the step plus one overlap
    (2000, 1500, 640, 128),
    (1000, 700, 256, 0),
    (1024, 768, 256, 0),
    (97, 53, 10, 9),
    (20000, 300, 640, 200),
    (77, 55, 1, 0),
]


def _coverage(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    counts = np.zeros((height, width), dtype=np.int32)
    for x0, y0, x1, y1 in boxes:
        counts[y0:y1, x0:x1] += 1
    return counts


@pytest.mark.parametrize("width,height,tile,overlap", SIZES)
def test_tiles_cover_every_pixel_and_stay_inside(width, height, tile, overlap):
    boxes = tile_boxes(width, height, tile, overlap)
    assert boxes.dtype == np.int64 and boxes.shape[1] == 4 and len(boxes) >= 1
    assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 1] >= 0)
    assert np.all(boxes[:, 2] <= width) and np.all(boxes[:, 3] <= height)
    assert np.all(boxes[:, 2] - boxes[:, 0] == min(tile, width))
    assert np.all(boxes[:, 3] - boxes[:, 1] == min(tile, height))
    assert _coverage(boxes, width, height).min() >= 1


@pytest.mark.parametrize("width,height,tile,overlap", SIZES)
def test_row_major_order_and_neighbour_overlap(width, height, tile, overlap):
    boxes = tile_boxes(width, height, tile, overlap)
    keys = [(int(y0), int(x0)) for x0, y0, _, _ in boxes]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for axis in (0, 1):
        starts = np.unique(boxes[:, axis])
        ends = np.unique(boxes[:, axis + 2])
        if len(starts) > 1:
            overlaps = ends[:-1] - starts[1:]
            assert overlaps.min() >= overlap


def test_single_tile_when_image_is_smaller_or_equal():
    assert tile_boxes(300, 200, 640, 128).tolist() == [[0, 0, 300, 200]]
    assert tile_boxes(640, 640, 640, 128).tolist() == [[0, 0, 640, 640]]
    assert tile_boxes(640, 100, 640, 0).tolist() == [[0, 0, 640, 100]]


def test_last_tile_is_shifted_back_to_the_border():
    assert tile_boxes(2000, 640, 640, 128)[:, 0].tolist() == [0, 512, 1024, 1360]
    assert tile_boxes(1000, 256, 256, 0)[:, 0].tolist() == [0, 256, 512, 744]
    assert tile_boxes(1024, 256, 256, 0)[:, 0].tolist() == [0, 256, 512, 768]


def test_deterministic():
    first = tile_boxes(3001, 2999, 512, 100)
    assert np.array_equal(first, tile_boxes(3001, 2999, 512, 100))


@pytest.mark.parametrize(
    "args,message",
    [
        ((100, 100, 64, 64), "overlap"),
        ((100, 100, 64, 100), "overlap"),
        ((100, 100, 64, -1), "overlap"),
        ((0, 100, 64, 8), "width"),
        ((100, 0, 64, 8), "height"),
        ((100, 100, 0, 0), "tile"),
        ((100.5, 100, 64, 8), "width"),
        ((100, 100, 64.0, 8), "tile"),
        ((True, 100, 64, 8), "width"),
        ((100, 100, 64, "8"), "overlap"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(args, message):
    with pytest.raises(ValueError, match=message):
        tile_boxes(*args)


def test_numpy_integers_are_accepted_and_overlap_tile_minus_one_is_valid():
    boxes = tile_boxes(np.int64(50), np.int32(7), 8, 7)
    assert len(boxes) == 43 and _coverage(boxes, 50, 7).min() >= 1


def test_any_object_up_to_overlap_plus_one_lies_inside_some_tile():
    rng = np.random.default_rng(7)
    for _ in range(100):
        tile = int(rng.integers(2, 200))
        overlap = int(rng.integers(0, tile))
        width, height = (int(v) for v in rng.integers(1, tile + 12 * (tile - overlap), 2))
        boxes = tile_boxes(width, height, tile, overlap)
        for _ in range(40):
            w = int(rng.integers(1, min(overlap + 1, width) + 1))
            h = int(rng.integers(1, min(overlap + 1, height) + 1))
            x0 = int(rng.integers(0, width - w + 1))
            y0 = int(rng.integers(0, height - h + 1))
            inside = (
                (boxes[:, 0] <= x0) & (boxes[:, 1] <= y0)
                & (boxes[:, 2] >= x0 + w) & (boxes[:, 3] >= y0 + h)
            )
            assert inside.any(), (width, height, tile, overlap, (x0, y0, w, h))


def test_an_object_wider_than_overlap_plus_one_can_be_cut_everywhere():
    boxes = tile_boxes(1000, 10, 100, 20)
    w, x0 = 22, 79  # spans the seam between the tiles at 0-100 and 80-180
    inside = (boxes[:, 0] <= x0) & (boxes[:, 2] >= x0 + w)
    assert not inside.any()
