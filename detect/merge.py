"""Seam de-duplication: one detection per cell after tiles are mapped back to the capture.

A cell cut by a tile border is seen whole in one tile (when it is smaller than the tile
overlap) and as a truncated part in its neighbours. Merging keeps the whole box:

1. boxes that do not touch an inner tile border (an edge of the tile that is not an edge
   of the image) come first, then by score (descending), then by coordinates and class;
2. greedy class-aware suppression in that order: a box is dropped when a kept box of the
   same class overlaps it with IoU above ``iou``, or, for a truncated box, when the kept
   box covers more than ``ios`` of the truncated box's own area (intersection over the
   smaller box: a part inside a whole cell).

The result is sorted by score (descending), then by coordinates and class, so the same
input gives the same output whatever order the tiles were processed in.
"""

from __future__ import annotations

import numpy as np

from smearscope.detect.detections import Detections

EDGE_MARGIN_PX = 2.0


def touches_inner_border(
    xyxy: np.ndarray,
    tile_xyxy: np.ndarray | tuple[float, float, float, float],
    width: float,
    height: float,
    margin: float = EDGE_MARGIN_PX,
) -> np.ndarray:
    """Which boxes come within ``margin`` of a tile edge that is not an image edge.

    ``xyxy`` (N, 4), the tile and the ``width`` x ``height`` image share one pixel frame.
    """
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    tx0, ty0, tx1, ty1 = (float(v) for v in np.asarray(tile_xyxy).reshape(4))
    return (
        ((tx0 > 0) & (boxes[:, 0] <= tx0 + margin))
        | ((ty0 > 0) & (boxes[:, 1] <= ty0 + margin))
        | ((tx1 < width) & (boxes[:, 2] >= tx1 - margin))
        | ((ty1 < height) & (boxes[:, 3] >= ty1 - margin))
    )


def _areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def _overlaps(box: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IoU and intersection over the smaller area of ``box`` against each of ``boxes``."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = _areas(box[None])[0]
    areas = _areas(boxes)
    union = area + areas - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    smaller = np.minimum(area, areas)
    ios = np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
    return iou, ios


def sort_order(detections: Detections, first: np.ndarray | None = None) -> np.ndarray:
    """Indices sorting by ``first`` (False before True, if given), score descending,
    then x0, y0, x1, y1 and class id ascending."""
    d = detections
    keys = [d.class_ids, d.xyxy[:, 3], d.xyxy[:, 2], d.xyxy[:, 1], d.xyxy[:, 0], -d.scores]
    if first is not None:
        keys.append(np.asarray(first, dtype=bool))
    return np.lexsort(keys)


def merge_detections(
    detections: Detections,
    truncated: np.ndarray,
    iou: float = 0.5,
    ios: float = 0.6,
) -> Detections:
    """De-duplicate detections from overlapping tiles (see the module docstring).

    ``truncated`` (N,) bool marks boxes that touch an inner tile border
    (``touches_inner_border``). Returns the kept detections in deterministic order.
    """
    truncated = np.asarray(truncated, dtype=bool).reshape(-1)
    if len(truncated) != len(detections):
        raise ValueError(f"truncated: has {len(truncated)} entries for {len(detections)} boxes")
    for name, value in (("iou", iou), ("ios", ios)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {value}")
    order = sort_order(detections, first=truncated)
    boxes = detections.xyxy[order]
    classes = detections.class_ids[order]
    partial = truncated[order]
    suppressed = np.zeros(len(order), dtype=bool)
    # Only boxes that meet box i can be suppressed by it (no overlap: IoU and IoS are 0), so
    # each step looks at the boxes whose left edge lies within one box width of box i's span.
    by_x0 = np.argsort(boxes[:, 0], kind="stable")
    x0_sorted = boxes[by_x0, 0]
    widest = float(np.max(boxes[:, 2] - boxes[:, 0])) if len(boxes) else 0.0
    for i in range(len(order)):
        if suppressed[i]:
            continue
        box = boxes[i]
        lo = int(np.searchsorted(x0_sorted, box[0] - widest - 1.0, side="left"))  # 1 px slack for rounding
        hi = int(np.searchsorted(x0_sorted, box[2], side="right"))
        near = by_x0[lo:hi]
        rest = near[(near > i) & ~suppressed[near] & (classes[near] == classes[i])
                    & (boxes[near, 2] >= box[0]) & (boxes[near, 1] <= box[3]) & (boxes[near, 3] >= box[1])]
        if rest.size == 0:
            continue
        box_iou, box_ios = _overlaps(box, boxes[rest])
        suppressed[rest[(box_iou > iou) | (partial[rest] & (box_ios > ios))]] = True
    kept = detections.select(order[~suppressed])
    return kept.select(sort_order(kept))
