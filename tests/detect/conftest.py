"""Synthetic smears drawn on the fly for the detect tests."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

BACKGROUND_RGB = np.array([238.0, 229.0, 233.0])
RBC_RGB = np.array([208.0, 122.0, 138.0])
WBC_CYTOPLASM_RGB = np.array([200.0, 180.0, 215.0])
WBC_NUCLEUS_RGB = np.array([95.0, 55.0, 140.0])


def _disc_layer(size: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    """Anti-aliased disc coverage in [0, 1] on a ``size`` x ``size`` patch (pixel centres
    at integer + 0.5; the coverage sums to pi * radius**2)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    distance = np.hypot(xs - centre[0], ys - centre[1])
    return np.clip(radius - distance + 0.5, 0.0, 1.0)


def _stamp(transmittance: np.ndarray, cx: float, cy: float, radius: float, rgb: np.ndarray, pallor: float) -> None:
    """Multiply a cell's transmittance (with an optional lighter centre) into the field."""
    height, width = transmittance.shape[:2]
    x0, y0 = max(int(cx - radius) - 2, 0), max(int(cy - radius) - 2, 0)
    size = int(2 * radius) + 5
    x1, y1 = min(x0 + size, width), min(y0 + size, height)
    if x1 <= x0 or y1 <= y0:
        return
    centre = (cx - x0, cy - y0)
    body = _disc_layer(size, centre, radius)[: y1 - y0, : x1 - x0]
    cell = 1.0 - body[..., None] * (1.0 - rgb / BACKGROUND_RGB)
    if pallor > 0:
        inner = _disc_layer(size, centre, 0.4 * radius)[: y1 - y0, : x1 - x0]
        inner = cv2.GaussianBlur(inner, (0, 0), max(0.15 * radius, 0.5))
        cell = cell + inner[..., None] * pallor * (1.0 - cell)
    transmittance[y0:y1, x0:x1] *= cell


def draw_smear(
    width: int,
    height: int,
    um_per_px: float,
    seed: int = 0,
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0),
    brightness: float = 1.0,
    coverage: float = 0.3,
    overlapping: float = 0.15,
    wbcs: int = 1,
    rbc_rgb: np.ndarray = RBC_RGB,
) -> tuple[np.ndarray, np.ndarray]:
    """An RGB smear of RBCs 7.5 +- 0.7 um across (some overlapping, pale centres) and a few
    WBCs, optically blurred, noisy and colour-cast. Returns (image, RBC diameters in px)."""
    rng = np.random.default_rng(seed)
    field = np.ones((height, width, 3), dtype=np.float32)
    wanted = int(coverage * width * height / (math.pi * (3.75 / um_per_px) ** 2))
    placed = np.zeros((wanted + wbcs, 3))  # cx, cy, radius of every cell drawn so far
    count = 0
    for _ in range(wbcs):
        radius = 6.0 / um_per_px
        cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
        _stamp(field, cx, cy, radius, WBC_CYTOPLASM_RGB, 0.0)
        _stamp(field, cx + 0.1 * radius, cy, 0.6 * radius, WBC_NUCLEUS_RGB, 0.0)
        placed[count] = (cx, cy, radius)
        count += 1
    diameters = []
    for _ in range(wanted):
        radius = rng.normal(7.5, 0.7) / 2 / um_per_px
        for _attempt in range(30):
            if count and rng.random() < overlapping:
                px, py, pr = placed[int(rng.integers(count))]
                angle = rng.uniform(0, 2 * math.pi)
                distance = 0.75 * (pr + radius)
                cx, cy = px + distance * math.cos(angle), py + distance * math.sin(angle)
                ok = 0 <= cx < width and 0 <= cy < height
            else:
                cx, cy = rng.uniform(0, width), rng.uniform(0, height)
                others = placed[:count]
                gaps = np.hypot(others[:, 0] - cx, others[:, 1] - cy) - 1.1 * (others[:, 2] + radius)
                ok = bool(np.all(gaps > 0))
            if ok:
                _stamp(field, cx, cy, radius, rbc_rgb, 0.55)
                placed[count] = (cx, cy, radius)
                count += 1
                diameters.append(2 * radius)
                break
    blur = max(0.5, 0.25 / um_per_px)
    field = cv2.GaussianBlur(field, (0, 0), blur)
    image = field * BACKGROUND_RGB * np.asarray(cast) * brightness
    image = image + rng.normal(0, 2.5, image.shape)
    return np.clip(image + 0.5, 0, 255).astype(np.uint8), np.asarray(diameters)


def draw_cells(
    width: int, height: int, cells: list[tuple[int, int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Purple discs (cx, cy, radius) on a pale noisy background; returns the image and the
    true xyxy box of each disc (pixel edges: a disc drawn from cx - r to cx + r)."""
    rng = np.random.default_rng(1)
    image = np.broadcast_to(BACKGROUND_RGB.astype(np.uint8), (height, width, 3)).copy()
    for cx, cy, radius in cells:
        cv2.circle(image, (cx, cy), radius, tuple(int(v) for v in WBC_NUCLEUS_RGB), -1)
    noise = rng.integers(-3, 4, image.shape)
    image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    boxes = np.array([(cx - r, cy - r, cx + r + 1, cy + r + 1) for cx, cy, r in cells], dtype=np.float64)
    return image, boxes.reshape(-1, 4)


@pytest.fixture(scope="session")
def smear():
    """``draw_smear`` as a fixture."""
    return draw_smear


@pytest.fixture(scope="session")
def cells_image():
    """``draw_cells`` as a fixture."""
    return draw_cells
