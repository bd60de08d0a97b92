"""Tile geometry: which square windows cover an image (pure integer arithmetic).

Tiles are laid on a regular grid with ``tile - overlap`` pixels between starts; the last
row and column are shifted back so that they end at the image border, so no tile reaches
beyond the image and neighbours overlap by at least ``overlap`` pixels. An object at most
``overlap + 1`` pixels wide and high therefore lies fully inside at least one tile.
"""

from __future__ import annotations

import operator

import numpy as np


def _positive_int(value: object, name: str, minimum: int) -> int:
    """``value`` as an int >= ``minimum``; ``ValueError`` naming the argument otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of the tiles along one axis of ``length`` pixels."""
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile + 1, step))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def tile_boxes(width: int, height: int, tile: int, overlap: int) -> np.ndarray:
    """Tiles covering a ``width`` x ``height`` image, as an int64 ``(K, 4)`` xyxy array.

    Row-major order (top row first, left to right). Each tile is ``tile`` x ``tile`` pixels,
    except along an axis shorter than ``tile``, where the single tile spans the whole axis
    (the caller pads it). ``overlap`` must satisfy ``0 <= overlap < tile``.
    """
    width = _positive_int(width, "width", 1)
    height = _positive_int(height, "height", 1)
    tile = _positive_int(tile, "tile", 1)
    overlap = _positive_int(overlap, "overlap", 0)
    if overlap >= tile:
        raise ValueError(f"overlap must be smaller than tile ({tile}), got {overlap}")
    xs = _starts(width, tile, overlap)
    ys = _starts(height, tile, overlap)
    boxes = [(x, y, min(x + tile, width), min(y + tile, height)) for y in ys for x in xs]
    return np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
