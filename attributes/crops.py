"""Square cell crops at a fixed physical scale, centred on each box.

With a known scale (``um_per_px`` of the capture) every crop covers ``crop_um`` micrometres
whatever the microscope, so a cell's size in the crop means its size on the slide. Without a
scale the side falls back to ``box_scale`` times the box's longer side (the result says so).
Boxes reaching out of the image are clipped; empty or fully outside boxes are rejected with
a one-line reason. Where a crop window leaves the image it is padded with the local
background colour (the brightest fifth of the window: plasma between cells).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BACKGROUND_QUANTILE = 0.8


@dataclass
class CropResult:
    """Crops of the usable boxes and the reasons the others were rejected."""

    crops: np.ndarray  # (N, size, size, 3) uint8, one per kept box
    kept: np.ndarray  # indices of the kept boxes in the input order
    rejected: list[tuple[int, str]] = field(default_factory=list)
    scale_mode: str = "physical"  # "physical" (crop_um at um_per_px) or "box" (box-relative)
    notes: list[str] = field(default_factory=list)


def check_box(box: np.ndarray, width: int, height: int) -> tuple[np.ndarray | None, str | None]:
    """The box clipped to the image, or ``None`` and why it cannot be cropped."""
    shown = "[" + ", ".join(f"{v:g}" for v in box) + "]"
    if not np.all(np.isfinite(box)):
        return None, f"box {shown} has a non-finite coordinate"
    if box[2] <= box[0] or box[3] <= box[1]:
        return None, f"box {shown} is empty (zero or negative width or height)"
    clipped = np.clip(box, 0, [width, height, width, height])
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        return None, f"box {shown} lies outside the {width}x{height} image"
    return clipped, None


def background_colour(pixels: np.ndarray) -> np.ndarray:
    """Median colour of the brightest fifth of ``pixels`` (``(..., 3)`` uint8): the smear's background."""
    flat = pixels.reshape(-1, 3).astype(np.float32)
    if flat.size == 0:
        return np.full(3, 255, dtype=np.uint8)
    luminance = flat @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    bright = flat[luminance >= np.quantile(luminance, BACKGROUND_QUANTILE)]
    return np.median(bright, axis=0).round().astype(np.uint8)


def crop_side_px(box: np.ndarray, crop_um: float, um_per_px: float | None, box_scale: float) -> float:
    """Crop side in image pixels: ``crop_um / um_per_px``, or ``box_scale`` x the box's longer side."""
    if um_per_px is not None:
        return crop_um / um_per_px
    return box_scale * float(max(box[2] - box[0], box[3] - box[1]))


def crop_square(image: np.ndarray, centre: tuple[float, float], side_px: float, out_size: int) -> np.ndarray:
    """A ``side_px`` square around ``centre`` resampled to ``out_size``, padded with the background."""
    import cv2

    height, width = image.shape[:2]
    side = max(1, int(round(side_px)))
    x0 = int(round(centre[0] - side / 2))
    y0 = int(round(centre[1] - side / 2))
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    inside = image[ya:yb, xa:xb]
    if (xa, ya, xb, yb) == (x0, y0, x0 + side, y0 + side):
        window = inside
    else:
        window = np.empty((side, side, 3), dtype=np.uint8)
        window[:] = background_colour(inside)
        window[ya - y0:yb - y0, xa - x0:xb - x0] = inside
    interpolation = cv2.INTER_AREA if side > out_size else cv2.INTER_LINEAR
    return cv2.resize(window, (out_size, out_size), interpolation=interpolation)


def crop_cells(
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    out_size: int,
    crop_um: float,
    um_per_px: float | None,
    box_scale: float = 1.8,
) -> CropResult:
    """Crops of ``crop_um`` micrometres around each box centre, resampled to ``out_size``.

    ``image`` is RGB uint8 ``(H, W, 3)``; ``boxes_xyxy`` absolute pixels ``(N, 4)``. When
    ``um_per_px`` is ``None`` the side is ``box_scale`` x each box's longer side instead.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    if out_size < 1:
        raise ValueError(f"crop size must be positive, got {out_size}")
    if um_per_px is not None and not (np.isfinite(um_per_px) and um_per_px > 0):
        raise ValueError(f"um_per_px must be positive, got {um_per_px}")
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    height, width = image.shape[:2]
    crops, kept, rejected = [], [], []
    for i, box in enumerate(boxes):
        clipped, reason = check_box(box, width, height)
        if clipped is None:
            rejected.append((i, reason))
            continue
        centre = ((clipped[0] + clipped[2]) / 2, (clipped[1] + clipped[3]) / 2)
        side = crop_side_px(clipped, crop_um, um_per_px, box_scale)
        crops.append(crop_square(image, centre, side, out_size))
        kept.append(i)
    stack = np.stack(crops) if crops else np.zeros((0, out_size, out_size, 3), dtype=np.uint8)
    result = CropResult(stack, np.array(kept, dtype=np.int64), rejected, "physical" if um_per_px else "box")
    if um_per_px is None:
        result.notes.append(f"scale unknown: crops are {box_scale:g} x each box's longer side, not {crop_um:g} um")
    return result
