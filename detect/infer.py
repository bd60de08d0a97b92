"""Whole-capture detection: tiles read region by region, batched through any detector,
mapped back to capture pixels and de-duplicated across seams.

``predict`` is any callable taking a list of RGB uint8 tiles (each ``tile`` x ``tile`` x 3)
and returning, per tile, ``(boxes_xyxy (N, 4) in tile pixels, scores (N,), class_ids (N,))``.
Only one batch of tiles is in memory at a time, so a capture read by a region-reading
``CaptureReader`` is never held whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from smearscope.detect.capture import ArrayCapture, CaptureReader
from smearscope.detect.detections import Detections
from smearscope.detect.merge import EDGE_MARGIN_PX, merge_detections, touches_inner_border
from smearscope.detect.tiling import tile_boxes

PAD_VALUE = 114  # the grey of ultralytics' letterbox, which detectors are trained to ignore

TileOutput = tuple[np.ndarray, np.ndarray, np.ndarray]
Predict = Callable[[list[np.ndarray]], Sequence[TileOutput]]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TilePlan:
    """One tile: its box in the resampled ("working") image and the capture region it shows."""

    work: tuple[int, int, int, int]
    source: tuple[int, int, int, int]


def working_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """Size of the capture after resampling by ``scale`` (at least one pixel each way)."""
    return max(1, round(width * scale)), max(1, round(height * scale))


def plan_tiles(width: int, height: int, tile: int, overlap: int, scale: float = 1.0) -> list[TilePlan]:
    """Tiles over a ``width`` x ``height`` capture resampled by ``scale``, row-major."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    work_w, work_h = working_size(width, height, scale)
    plans = []
    for wx0, wy0, wx1, wy1 in tile_boxes(work_w, work_h, tile, overlap).tolist():
        sx0, sy0 = min(math.floor(wx0 / scale), width - 1), min(math.floor(wy0 / scale), height - 1)
        sx1 = max(min(math.ceil(wx1 / scale), width), sx0 + 1)
        sy1 = max(min(math.ceil(wy1 / scale), height), sy0 + 1)
        if wx1 == work_w:
            sx1 = width
        if wy1 == work_h:
            sy1 = height
        plans.append(TilePlan((wx0, wy0, wx1, wy1), (sx0, sy0, sx1, sy1)))
    return plans


def read_tile(reader: CaptureReader, plan: TilePlan, tile: int) -> np.ndarray:
    """The tile's pixels at working scale, padded with ``PAD_VALUE`` to ``tile`` x ``tile``."""
    wx0, wy0, wx1, wy1 = plan.work
    sx0, sy0, sx1, sy1 = plan.source
    width, height = wx1 - wx0, wy1 - wy0
    if (sx1 - sx0, sy1 - sy0) == (width, height):
        pixels = reader.read_region(sx0, sy0, sx1, sy1)
    else:
        pixels = reader.read_scaled_region(sx0, sy0, sx1, sy1, width, height)
    if (width, height) == (tile, tile):
        return pixels
    padded = np.full((tile, tile, 3), PAD_VALUE, dtype=np.uint8)
    padded[:height, :width] = pixels
    return padded


def _tile_detections(output: TileOutput, index: int) -> Detections:
    """Validate one tile's ``(boxes, scores, class_ids)`` from ``predict``."""
    try:
        boxes, scores, class_ids = output
    except (TypeError, ValueError):
        raise ValueError(f"predict: output for tile {index} is not (boxes, scores, class_ids)") from None
    try:
        return Detections(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), scores, class_ids)
    except ValueError as exc:
        raise ValueError(f"predict: output for tile {index}: {exc}") from None


def _to_capture(
    found: Detections, plan: TilePlan, work_size: tuple[int, int], capture_size: tuple[int, int], conf: float
) -> tuple[Detections, np.ndarray]:
    """Keep confident boxes centred inside the tile's image part, clip them to it and map
    them to capture pixels; also say which touch an inner tile border."""
    wx0, wy0, wx1, wy1 = plan.work
    sx0, sy0, sx1, sy1 = plan.source
    width, height = wx1 - wx0, wy1 - wy0
    boxes = found.xyxy
    centre_x, centre_y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    keep = (found.scores >= conf) & (centre_x >= 0) & (centre_x < width) & (centre_y >= 0) & (centre_y < height)
    found = found.select(keep)
    boxes = found.xyxy.copy()
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    solid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, found = boxes[solid], found.select(solid)
    work_boxes = boxes + np.array([wx0, wy0, wx0, wy0], dtype=np.float64)
    truncated = touches_inner_border(work_boxes, plan.work, work_size[0], work_size[1], EDGE_MARGIN_PX)
    factor = np.array([(sx1 - sx0) / width, (sy1 - sy0) / height] * 2)
    mapped = boxes * factor + np.array([sx0, sy0, sx0, sy0], dtype=np.float64)
    limit = np.array(list(capture_size) * 2, dtype=np.float64)
    mapped = np.clip(mapped, 0, limit)
    return Detections(mapped, found.scores, found.class_ids), truncated


def detect_capture(
    reader: CaptureReader | np.ndarray,
    predict: Predict,
    tile: int = 640,
    overlap: int = 128,
    batch: int = 8,
    scale: float = 1.0,
    conf: float = 0.25,
    iou: float = 0.5,
    progress: Progress | None = None,
) -> Detections:
    """Detect cells over a whole capture.

    The capture is resampled by ``scale`` (detector pixels per capture pixel, see
    ``scale.resample_factor``), cut into ``tile`` px tiles overlapping by ``overlap`` px
    (cells smaller than the overlap are always seen whole in some tile), and ``batch``
    tiles at a time go through ``predict``. Boxes scoring below ``conf`` or centred in the
    padding are dropped; the rest are mapped to capture pixels and merged across seams
    (``merge.merge_detections`` with ``iou``). ``progress(done_tiles, total_tiles)`` is
    called after each batch. Returns boxes in capture pixels, in deterministic order.
    """
    if isinstance(reader, np.ndarray):
        reader = ArrayCapture(reader)
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    for name, value in (("conf", conf), ("iou", iou)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    plans = plan_tiles(reader.width, reader.height, tile, overlap, scale)
    work_size = working_size(reader.width, reader.height, scale)
    capture_size = (reader.width, reader.height)
    parts: list[Detections] = []
    flags: list[np.ndarray] = []
    for start in range(0, len(plans), batch):
        chunk = plans[start:start + batch]
        outputs = list(predict([read_tile(reader, plan, tile) for plan in chunk]))
        if len(outputs) != len(chunk):
            raise ValueError(f"predict returned {len(outputs)} results for a batch of {len(chunk)} tiles")
        for offset, (plan, output) in enumerate(zip(chunk, outputs)):
            found = _tile_detections(output, start + offset)
            mapped, truncated = _to_capture(found, plan, work_size, capture_size, conf)
            parts.append(mapped)
            flags.append(truncated)
        if progress is not None:
            progress(min(start + batch, len(plans)), len(plans))
    merged = Detections.concatenate(parts)
    truncated = np.concatenate(flags) if flags else np.zeros(0, dtype=bool)
    return merge_detections(merged, truncated, iou=iou)
