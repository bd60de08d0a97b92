"""The whole-capture runner with a real (colour-threshold) detector on planted cells."""

from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest
import tifffile

from smearscope.detect.capture import TiffCapture, open_capture
from smearscope.detect.infer import PAD_VALUE, detect_capture, plan_tiles
from smearscope.detect.tiling import tile_boxes

WIDTH, HEIGHT = 2000, 1500


def blob_predict(tiles: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Purple blobs (blue well above green) as boxes; score = how much of the box they fill."""
    results = []
    for tile in tiles:
        purple = (tile[:, :, 2].astype(np.int16) - tile[:, :, 1]) > 44
        _, _, stats, _ = cv2.connectedComponentsWithStats(purple.astype(np.uint8), connectivity=8)
        boxes, scores = [], []
        for x, y, w, h, area in stats[1:]:
            if area >= 20:
                boxes.append((x, y, x + w, y + h))
                scores.append(area / (w * h))
        results.append((np.array(boxes, float).reshape(-1, 4), np.array(scores), np.zeros(len(boxes), int)))
    return results


def _planted_cells() -> list[tuple[int, int, int]]:
    """Cells centred on tile seams and corners, at scale 1 and at scale 0.5, plus some on
    the image border and some in tile interiors (cx, cy, radius)."""
    cells = []
    seams_1 = tile_boxes(WIDTH, HEIGHT, 640, 128)
    seams_half = tile_boxes(WIDTH // 2, HEIGHT // 2, 640, 128) * 2
    xs = sorted({int(v) for v in np.concatenate([seams_1[:, [0, 2]].ravel(), seams_half[:, [0, 2]].ravel()])} - {0, WIDTH})
    ys = sorted({int(v) for v in np.concatenate([seams_1[:, [1, 3]].ravel(), seams_half[:, [1, 3]].ravel()])} - {0, HEIGHT})
    rng = np.random.default_rng(11)
    candidates = [(x, y) for x in xs for y in ys]  # corners where seams cross
    candidates += [(x, int(rng.integers(60, HEIGHT - 60))) for x in xs]  # on vertical seams
    candidates += [(int(rng.integers(60, WIDTH - 60)), y) for y in ys]  # on horizontal seams
    candidates += [(45, 300), (WIDTH - 46, 900), (700, 45), (1300, HEIGHT - 46), (250, 250), (1800, 1300)]
    for cx, cy in candidates:
        radius = int(rng.integers(30, 46))
        cx, cy = min(max(cx, radius), WIDTH - radius - 1), min(max(cy, radius), HEIGHT - radius - 1)
        if all(np.hypot(cx - x, cy - y) > radius + r + 10 for x, y, r in cells):
            cells.append((cx, cy, radius))
    return cells


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of boxes a (N, 4) against b (M, 4)."""
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _assert_each_found_once(found, truth: np.ndarray) -> None:
    assert len(found) == len(truth), f"{len(found)} detections for {len(truth)} cells"
    ious = _iou(truth, found.xyxy)
    best = ious.argmax(axis=1)
    assert len(set(best.tolist())) == len(truth), "two cells matched the same detection"
    assert ious.max(axis=1).min() > 0.9, ious.max(axis=1).min()


@pytest.fixture(scope="module")
def field(cells_image):
    cells = _planted_cells()
    image, truth = cells_image(WIDTH, HEIGHT, cells)
    return image, truth


def test_the_planted_cells_really_cross_seams(field):
    _, truth = field
    tiles = tile_boxes(WIDTH, HEIGHT, 640, 128)
    cut = 0
    for box in truth:
        inside = (tiles[:, 0] <= box[0]) & (tiles[:, 2] >= box[2]) & (tiles[:, 1] <= box[1]) & (tiles[:, 3] >= box[3])
        overlapping = (tiles[:, 0] < box[2]) & (tiles[:, 2] > box[0]) & (tiles[:, 1] < box[3]) & (tiles[:, 3] > box[1])
        cut += int(overlapping.sum() > inside.sum())
    assert len(truth) >= 40 and cut >= 30


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_every_cell_found_exactly_once(field, scale):
    image, truth = field
    found = detect_capture(image, blob_predict, tile=640, overlap=128, batch=4, scale=scale)
    _assert_each_found_once(found, truth)
    assert np.all(found.xyxy[:, [0, 1]] >= 0) and np.all(found.xyxy[:, 2] <= WIDTH) and np.all(found.xyxy[:, 3] <= HEIGHT)


def test_tiled_tiff_gives_the_same_result_and_stays_bounded(tmp_path, field):
    image = np.tile(field[0], (2, 2, 1))  # 4000 x 3000: large against the fixed overheads
    path = tmp_path / "capture.tif"
    tifffile.imwrite(path, image, tile=(256, 256), photometric="rgb")
    from_memory = detect_capture(image, blob_predict, batch=2)
    with TiffCapture(str(path), cache_bytes=4 * 2**20) as reader:
        tracemalloc.start()
        from_file = detect_capture(reader, blob_predict, batch=2)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert len(from_file) == 4 * len(field[1])
    assert np.array_equal(from_file.xyxy, from_memory.xyxy)
    assert np.array_equal(from_file.scores, from_memory.scores)
    assert peak < image.nbytes / 3, f"peak {peak} bytes for a {image.nbytes}-byte capture"


def test_output_is_deterministic_across_batch_sizes(field):
    image, _ = field
    reference = detect_capture(image, blob_predict, batch=1)
    for batch in (3, 8, 64):
        other = detect_capture(image, blob_predict, batch=batch)
        assert np.array_equal(other.xyxy, reference.xyxy) and np.array_equal(other.scores, reference.scores)
    assert np.all(np.diff(reference.scores) <= 0)


def test_progress_reports_every_batch(field):
    image, _ = field
    calls = []
    detect_capture(image, blob_predict, batch=5, progress=lambda done, total: calls.append((done, total)))
    total = len(tile_boxes(WIDTH, HEIGHT, 640, 128))
    assert calls == [(min(d, total), total) for d in range(5, total + 5, 5)]


def grey_predict(tiles: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Boxes around flat regions of the padding grey, plus the purple blobs."""
    results = []
    for tile, (boxes, scores, classes) in zip(tiles, blob_predict(tiles)):
        grey = np.all(tile == PAD_VALUE, axis=2).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(grey)
        extra = np.array([(x, y, x + w, y + h) for x, y, w, h, _ in stats[1:]], float).reshape(-1, 4)
        results.append((np.vstack([boxes, extra]), np.concatenate([scores, np.ones(len(extra))]), np.zeros(len(boxes) + len(extra), int)))
    return results


def test_small_capture_is_padded_and_padding_detections_dropped(cells_image):
    image, truth = cells_image(300, 200, [(100, 100, 40), (250, 150, 35)])
    seen = []
    found = detect_capture(image, lambda tiles: seen.extend(t.shape for t in tiles) or grey_predict(tiles), tile=640, overlap=128)
    assert seen == [(640, 640, 3)]
    _assert_each_found_once(found, truth)


def test_cells_cut_by_the_image_border_are_kept(cells_image):
    image, _ = cells_image(900, 700, [(20, 300, 40), (880, 650, 45)])
    found = detect_capture(image, blob_predict, tile=256, overlap=96)
    assert len(found) == 2
    assert found.xyxy[:, 0].min() == 0 and found.xyxy[:, 2].max() == 900


def test_plan_tiles_maps_tiles_onto_the_whole_capture():
    for scale in (1.0, 0.5, 0.37, 2.0):
        plans = plan_tiles(WIDTH, HEIGHT, 640, 128, scale)
        sources = np.array([p.source for p in plans])
        assert sources[:, 0].min() == 0 and sources[:, 1].min() == 0
        assert sources[:, 2].max() == WIDTH and sources[:, 3].max() == HEIGHT
        for plan in plans:
            wx0, wy0, wx1, wy1 = plan.work
            sx0, sy0, sx1, sy1 = plan.source
            assert abs((sx1 - sx0) - (wx1 - wx0) / scale) <= 2 / scale + 1
            assert abs(sx0 - wx0 / scale) <= 1 and abs(sy0 - wy0 / scale) <= 1
    assert [p.source for p in plan_tiles(WIDTH, HEIGHT, 640, 128)] == [p.work for p in plan_tiles(WIDTH, HEIGHT, 640, 128)]


@pytest.mark.parametrize(
    "predict,kwargs,message",
    [
        (lambda tiles: [], {}, "returned 0 results"),
        (lambda tiles: [(np.zeros((1, 4)), np.zeros(2), np.zeros(1))] * len(tiles), {}, "tile 0: Detections.scores"),
        (lambda tiles: [None] * len(tiles), {}, "not \\(boxes, scores, class_ids\\)"),
        (blob_predict, {"batch": 0}, "batch"),
        (blob_predict, {"conf": 2.0}, "conf"),
        (blob_predict, {"scale": 0.0}, "scale"),
        (blob_predict, {"overlap": 640}, "overlap"),
    ],
)
def test_bad_predictors_and_arguments_are_clear_errors(cells_image, predict, kwargs, message):
    image, _ = cells_image(300, 200, [(100, 100, 40)])
    with pytest.raises(ValueError, match=message):
        detect_capture(image, predict, **kwargs)


def test_runs_on_an_opened_png(tmp_path, cells_image):
    image, truth = cells_image(700, 500, [(340, 250, 40), (600, 100, 30)])
    path = tmp_path / "capture.png"
    cv2.imwrite(str(path), image[:, :, ::-1])
    with open_capture(path) as reader:
        found = detect_capture(reader, blob_predict, tile=320, overlap=96)
    _assert_each_found_once(found, truth)
