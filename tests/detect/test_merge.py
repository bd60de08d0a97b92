"""Seam de-duplication: a cut cell is reported once, whole; neighbours survive."""

from __future__ import annotations

import numpy as np
import pytest

from smearscope.detect.detections import Detections
from smearscope.detect.merge import merge_detections, touches_inner_border
from smearscope.detect.tiling import tile_boxes

WIDTH, HEIGHT, TILE, OVERLAP = 1200, 1000, 400, 120


def _tiled_view(cells: np.ndarray, rng: np.random.Generator) -> tuple[Detections, np.ndarray]:
    """What an ideal detector reports tile by tile: the visible part of every cell, with a
    random score, and whether that part touches an inner tile border."""
    tiles = tile_boxes(WIDTH, HEIGHT, TILE, OVERLAP)
    boxes, flags = [], []
    for tile in tiles:
        for cell in cells:
            part = np.array([max(cell[0], tile[0]), max(cell[1], tile[1]), min(cell[2], tile[2]), min(cell[3], tile[3])], dtype=float)
            if part[2] > part[0] and part[3] > part[1]:
                boxes.append(part)
                flags.append(touches_inner_border(part[None], tile, WIDTH, HEIGHT)[0])
    scores = rng.uniform(0.3, 1.0, len(boxes))
    return Detections(np.array(boxes), scores, np.zeros(len(boxes), dtype=int)), np.array(flags)


def _same_boxes(found: np.ndarray, expected: np.ndarray) -> bool:
    order = np.lexsort(expected.T[::-1])
    found_order = np.lexsort(found.T[::-1])
    return found.shape == expected.shape and np.allclose(found[found_order], expected[order])


def test_touches_inner_border_only_counts_inner_edges():
    tile = (0, 280, 400, 680)  # left edge is the image edge, top/bottom are inner, right is inner
    boxes = np.array([
        [0, 400, 50, 450],      # on the image edge: not truncated
        [100, 281, 150, 320],   # within the margin of the inner top edge
        [350, 400, 400, 450],   # on the inner right edge
        [100, 400, 150, 450],   # well inside
        [100, 600, 150, 679],   # within the margin of the inner bottom edge
    ], dtype=float)
    assert touches_inner_border(boxes, tile, WIDTH, HEIGHT).tolist() == [False, True, True, False, True]
    last = (800, 600, 1200, 1000)  # right and bottom are image edges
    assert touches_inner_border(np.array([[1100, 900, 1200, 1000]], float), last, WIDTH, HEIGHT).tolist() == [False]


def test_cell_on_a_four_tile_corner_is_reported_once_with_its_full_box():
    tiles = tile_boxes(WIDTH, HEIGHT, TILE, OVERLAP)
    corner_x, corner_y = int(tiles[1, 0]), int(tiles[len(np.unique(tiles[:, 0])), 1])
    cell = np.array([[corner_x - 40, corner_y - 45, corner_x + 50, corner_y + 40]], dtype=float)
    rng = np.random.default_rng(0)
    found, truncated = _tiled_view(cell, rng)
    assert len(found) >= 4 and truncated.sum() >= 3
    merged = merge_detections(found, truncated)
    assert len(merged) == 1
    assert np.allclose(merged.xyxy[0], cell[0])


def test_partial_boxes_lose_even_with_higher_scores():
    full = [100, 100, 200, 200]
    part = [150, 100, 200, 200]
    found = Detections(np.array([part, full], float), [0.99, 0.4], [0, 0])
    merged = merge_detections(found, np.array([True, False]))
    assert merged.xyxy.tolist() == [full] and merged.scores.tolist() == [0.4]


def test_many_cells_across_seams_each_reported_once():
    rng = np.random.default_rng(3)
    cells = []
    while len(cells) < 40:
        w, h = rng.integers(30, OVERLAP, 2)
        x0, y0 = rng.integers(0, WIDTH - w), rng.integers(0, HEIGHT - h)
        box = np.array([x0, y0, x0 + w, y0 + h], dtype=float)
        if all(min(box[2], c[2]) <= max(box[0], c[0]) or min(box[3], c[3]) <= max(box[1], c[1]) for c in cells):
            cells.append(box)
    cells = np.array(cells)
    found, truncated = _tiled_view(cells, rng)
    merged = merge_detections(found, truncated)
    assert _same_boxes(merged.xyxy, cells)


def test_adjacent_cells_are_both_kept():
    a, b = [100, 100, 180, 180], [180, 100, 260, 180]  # touching, same class
    c = [150, 150, 230, 230]  # overlapping both by less than the thresholds
    found = Detections(np.array([a, b, c], float), [0.9, 0.8, 0.7], [0, 0, 0])
    merged = merge_detections(found, np.zeros(3, bool))
    assert len(merged) == 3


def test_overlapping_cells_of_different_classes_are_both_kept():
    box = [100, 100, 180, 180]
    found = Detections(np.array([box, box], float), [0.9, 0.8], [0, 1])
    assert len(merge_detections(found, np.zeros(2, bool))) == 2
    same_class = Detections(np.array([box, box], float), [0.9, 0.8], [1, 1])
    assert merge_detections(same_class, np.zeros(2, bool)).scores.tolist() == [0.9]


def test_containment_applies_to_truncated_boxes_only():
    big, small = [100, 100, 200, 200], [110, 110, 150, 150]  # small lies inside big, IoU 0.16
    both_full = Detections(np.array([big, small], float), [0.9, 0.8], [0, 0])
    assert len(merge_detections(both_full, np.array([False, False]))) == 2
    assert len(merge_detections(both_full, np.array([False, True]))) == 1


def test_output_order_is_deterministic_whatever_the_input_order():
    rng = np.random.default_rng(5)
    cells = np.array([[x, y, x + 60, y + 60] for x in range(40, 1100, 130) for y in range(30, 900, 140)], float)
    found, truncated = _tiled_view(cells, rng)
    found.scores[:] = np.round(found.scores, 1)  # many equal scores: ties broken by coordinates
    reference = merge_detections(found, truncated)
    for seed in range(5):
        perm = np.random.default_rng(seed).permutation(len(found))
        shuffled = merge_detections(found.select(perm), truncated[perm])
        assert np.array_equal(shuffled.xyxy, reference.xyxy)
        assert np.array_equal(shuffled.scores, reference.scores)
        assert np.array_equal(shuffled.class_ids, reference.class_ids)
    scores = reference.scores
    assert np.all(scores[:-1] >= scores[1:])


def test_empty_input_and_bad_arguments():
    assert len(merge_detections(Detections(), np.zeros(0, bool))) == 0
    one = Detections(np.array([[0, 0, 5, 5]], float), [0.5], [0])
    with pytest.raises(ValueError, match="truncated"):
        merge_detections(one, np.zeros(2, bool))
    with pytest.raises(ValueError, match="iou"):
        merge_detections(one, np.zeros(1, bool), iou=1.5)


def _merge_all_pairs(detections: Detections, truncated: np.ndarray, iou: float, ios: float) -> Detections:
    """The suppression rule applied by comparing each kept box with every later box."""
    from smearscope.detect.merge import sort_order

    order = sort_order(detections, first=truncated)
    boxes, classes, partial = detections.xyxy[order], detections.class_ids[order], truncated[order]
    suppressed = np.zeros(len(order), dtype=bool)
    for i in range(len(order)):
        if suppressed[i]:
            continue
        for j in range(i + 1, len(order)):
            if suppressed[j] or classes[j] != classes[i]:
                continue
            iw = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]))
            ih = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]))
            area_i = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            area_j = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            inter = iw * ih
            union, smaller = area_i + area_j - inter, min(area_i, area_j)
            if (union > 0 and inter / union > iou) or (partial[j] and smaller > 0 and inter / smaller > ios):
                suppressed[j] = True
    kept = detections.select(order[~suppressed])
    return kept.select(sort_order(kept))


@pytest.mark.parametrize("seed", range(4))
def test_merge_matches_the_all_pairs_rule_on_crowded_boxes(seed):
    rng = np.random.default_rng(seed)
    n = 300
    corner = rng.uniform(0, 400, (n, 2))
    size = np.where(rng.random((n, 1)) < 0.05, rng.uniform(100, 300, (n, 2)), rng.uniform(5, 40, (n, 2)))
    boxes = np.hstack([corner, corner + size])
    flat = rng.random(n) < 0.05
    boxes[flat, 2] = boxes[flat, 0]  # zero-width boxes meet nothing
    found = Detections(boxes, np.round(rng.uniform(0.2, 1.0, n), 1), rng.integers(0, 2, n))
    truncated = rng.random(n) < 0.3
    for iou, ios in ((0.5, 0.6), (0.0, 0.0), (0.3, 0.9)):
        fast = merge_detections(found, truncated, iou=iou, ios=ios)
        reference = _merge_all_pairs(found, truncated, iou, ios)
        assert len(fast) < n
        assert np.array_equal(fast.xyxy, reference.xyxy) and np.array_equal(fast.class_ids, reference.class_ids)
