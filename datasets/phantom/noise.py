"""Seeded, position-addressed randomness and point splatting.

Noise here is a function of (seed, position), not of an array's shape, so any window of a
slide, at any scale and in any tiling, sees the same values at the same place.
"""

from __future__ import annotations

import cv2
import numpy as np

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array."""
    h = (h ^ (h >> np.uint64(30))) * _M2
    h = (h ^ (h >> np.uint64(27))) * _M3
    return h ^ (h >> np.uint64(31))


def hash_uniform(seed: int, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Uniform values in [0, 1) addressed by integer lattice points and a seed."""
    with np.errstate(over="ignore"):
        h = np.uint64(seed & 0xFFFFFFFF) * _M1
        h = _mix(h ^ (np.asarray(ix).astype(np.int64).astype(np.uint64) * _M2))
        h = _mix(h ^ (np.asarray(iy).astype(np.int64).astype(np.uint64) * _M3))
    return (h >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def lattice_noise(seed: int, x: np.ndarray, y: np.ndarray, grain: float) -> np.ndarray:
    """Smooth value noise in [-1, 1] with feature size ``grain`` at positions ``x, y``.

    Lattice values are hashed once per lattice node of the queried region and interpolated.
    """
    gx, gy = np.asarray(x, dtype=np.float64) / grain, np.asarray(y, dtype=np.float64) / grain
    if gx.size == 0:
        return np.zeros(gx.shape, dtype=np.float32)
    ix, iy = np.floor(gx), np.floor(gy)
    fx, fy = (gx - ix).astype(np.float32), (gy - iy).astype(np.float32)
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    ix, iy = ix.astype(np.int64), iy.astype(np.int64)
    x0, y0 = int(ix.min()), int(iy.min())
    nodes_x = np.arange(x0, int(ix.max()) + 2)
    nodes_y = np.arange(y0, int(iy.max()) + 2)
    grid = hash_uniform(seed, nodes_x[None, :], nodes_y[:, None]).astype(np.float32)
    jx, jy = ix - x0, iy - y0
    v00, v10 = grid[jy, jx], grid[jy, jx + 1]
    v01, v11 = grid[jy + 1, jx], grid[jy + 1, jx + 1]
    top = v00 + (v10 - v00) * fx
    bottom = v01 + (v11 - v01) * fx
    return (top + (bottom - top) * fy) * 2.0 - 1.0


def texture(seed: int, x: np.ndarray, y: np.ndarray, grain: float, px: float, octaves: int = 2) -> np.ndarray:
    """Value noise of ``octaves`` octaves; detail much finer than a pixel ``px`` averages out."""
    out = np.zeros(np.shape(x), dtype=np.float32)
    norm = 0.0
    for octave in range(octaves):
        scale = grain / (2 ** octave)
        weight = 0.5 ** octave
        norm += weight
        # A pixel larger than the feature averages it: the amplitude falls with their ratio.
        visible = min(1.0, scale / px)
        if visible >= 0.3:
            out += (weight * visible) * lattice_noise(seed + 7919 * octave, x, y, scale)
    return out / norm


def splat(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Add point masses at pixel positions ``x, y`` (bilinear), then Gaussian-blur by ``sigma`` px.

    Positions are continuous pixel coordinates (pixel ``i`` covers ``[i, i + 1)``); the mass of
    each point is preserved, so sub-pixel dots show as their area fraction.
    """
    h, w = shape
    out = np.zeros(h * w, dtype=np.float64)
    if len(x):
        gx, gy = np.asarray(x, dtype=np.float64) - 0.5, np.asarray(y, dtype=np.float64) - 0.5
        x0, y0 = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
        fx, fy = gx - x0, gy - y0
        weights = np.asarray(weights, dtype=np.float64)
        for dx, dy, part in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                             (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            xx, yy = x0 + dx, y0 + dy
            inside = (xx >= 0) & (xx < w) & (yy >= 0) & (yy < h)
            out += np.bincount(yy[inside] * w + xx[inside], weights=(weights * part)[inside], minlength=h * w)
    image = out.reshape(h, w).astype(np.float32)
    if sigma >= 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_CONSTANT)
    return image


def band_normals(seed: int, row0: int, row1: int, col0: int, col1: int, band: int = 16, block: int = 1024) -> np.ndarray:
    """Standard normal noise (rows, cols, 3) for a window of an image, fixed per image block.

    Each block of ``band`` rows by ``block`` columns draws its noise from its own generator,
    so a window gets the same values whether the image is rendered whole or in pieces.
    """
    rows = []
    for b in range(row0 // band, (row1 - 1) // band + 1):
        parts = [np.random.default_rng([seed & 0xFFFFFFFF, b, c]).standard_normal((band, block, 3), dtype=np.float32)
                 for c in range(col0 // block, (col1 - 1) // block + 1)]
        rows.append(np.concatenate(parts, axis=1))
    stacked = np.concatenate(rows, axis=0)
    top, left = row0 % band, col0 % block
    return stacked[top:top + (row1 - row0), left:left + (col1 - col0)]
