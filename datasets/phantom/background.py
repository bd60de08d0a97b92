"""What lies between the white cells: plasma, red cells, platelets and stain debris.

Every function returns a density for a window of the slide given by the slide position of
its top-left pixel corner (``origin``, um), its shape and the pixel size ``px`` (um).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from smearscope.datasets.phantom.noise import hash_uniform, lattice_noise, splat
from smearscope.datasets.phantom.slide import RedCells, Specks

SMOOTH_STEP_PX = 16
MOTTLE_GRAIN_UM = 1.6
MOTTLE_STEP_PX = 4


def smooth_field(fn, origin: tuple[float, float], shape: tuple[int, int], px: float,
                 step_px: int = SMOOTH_STEP_PX) -> np.ndarray:
    """A slowly varying field ``fn(x_um, y_um)`` evaluated on a coarse grid and interpolated.

    The coarse nodes sit at fixed positions (multiples of ``step_px`` pixels from the
    origin of the coordinates), so windows of one image agree where they overlap.
    """
    h, w = shape
    step = step_px * px

    def axis(o: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        centres = o + (np.arange(n) + 0.5) * px
        first = np.floor(centres[0] / step) - 1
        nodes = (first + np.arange(int(np.ceil(centres[-1] / step) - first) + 2)) * step
        pos = (centres - nodes[0]) / step
        i0 = np.floor(pos).astype(np.int64)
        return nodes, i0, (pos - i0).astype(np.float32)

    nx, ix, tx = axis(origin[0], w)
    ny, iy, ty = axis(origin[1], h)
    gx, gy = np.meshgrid(nx, ny)
    values = np.asarray(fn(gx, gy), dtype=np.float32)
    rows = values[iy] * (1 - ty)[:, None] + values[iy + 1] * ty[:, None]
    return rows[:, ix] * (1 - tx)[None, :] + rows[:, ix + 1] * tx[None, :]


def plasma_density(seed: int, origin: tuple[float, float], shape: tuple[int, int], px: float) -> np.ndarray:
    """Relative plasma/stain film thickness, around 1, varying over tens of micrometres."""
    return 1.0 + 0.25 * smooth_field(lambda x, y: lattice_noise(seed + 5, x, y, 45.0), origin, shape, px)


def mottle(seed: int, origin: tuple[float, float], shape: tuple[int, int], px: float, amount: float = 0.1) -> np.ndarray:
    """Uneven haemoglobin and stain uptake within red cells: around 1, micrometre-sized blotches."""
    visible = min(1.0, MOTTLE_GRAIN_UM / (MOTTLE_STEP_PX * px))
    if visible < 0.25:
        return np.ones(shape, dtype=np.float32)
    field = smooth_field(lambda x, y: lattice_noise(seed + 9, x, y, MOTTLE_GRAIN_UM), origin, shape, px, MOTTLE_STEP_PX)
    return 1.0 + amount * visible * field


@lru_cache(maxsize=2048)
def _rbc_sprite(d_px: float, aspect: float, angle: float, pallor: float, fx: float, fy: float) -> np.ndarray:
    """Thickness of one red cell on a small pixel grid: a disc with a pale centre (shared, read-only)."""
    half = int(np.ceil(d_px / 2)) + 2
    off = np.arange(-half, half + 1) + 0.5
    x, y = np.meshgrid(off - fx, off - fy)
    c, s = np.cos(angle), np.sin(angle)
    u, v = x * c + y * s, -x * s + y * c
    a, b = d_px / 2, d_px / 2 * aspect
    k0 = np.hypot(u / a, v / b)
    k1 = np.hypot(u / a ** 2, v / b ** 2)
    dist = k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)
    edge = np.clip(0.5 - dist, 0.0, 1.0)
    centre = 1.0 - np.clip((k0 - 0.12) / 0.5, 0.0, 1.0)
    centre = centre * centre * (3 - 2 * centre)
    rim = 1.0 + 0.2 * np.exp(-((k0 - 0.84) / 0.12) ** 2)
    sprite = (edge * (1.0 - pallor * centre) * rim).astype(np.float32)
    sprite.flags.writeable = False
    return sprite


def red_cell_density(cells: RedCells, origin: tuple[float, float], shape: tuple[int, int], px: float) -> np.ndarray:
    """Haemoglobin thickness map of the red cells in the window (overlaps add up)."""
    h, w = shape
    if not len(cells):
        return np.zeros(shape, dtype=np.float32)
    reach = float(cells.diameter.max()) / 2 + 2 * px
    sel = np.flatnonzero((cells.x > origin[0] - reach) & (cells.x < origin[0] + w * px + reach)
                         & (cells.y > origin[1] - reach) & (cells.y < origin[1] + h * px + reach))
    if not sel.size:
        return np.zeros(shape, dtype=np.float32)
    cx = (cells.x[sel] - origin[0]) / px
    cy = (cells.y[sel] - origin[1]) / px
    d_px = cells.diameter[sel] / px
    # Cells are drawn from a few shared sprites: size, shape and sub-pixel phase are binned
    # finely where a red cell is large on screen and coarsely where it is a few pixels.
    big = d_px >= 14
    size_step = np.where(big, np.maximum(0.2 / px, 1.0), 0.35)
    size_code = np.round(d_px / size_step).astype(np.int64)
    phases = np.where(big, 1, 2)
    ax, ay = np.floor(cx).astype(np.int64), np.floor(cy).astype(np.int64)
    fx_code = np.round((cx - ax) * phases).astype(np.int64)
    fy_code = np.round((cy - ay) * phases).astype(np.int64)
    oval = cells.aspect[sel] < 0.9
    aspect_code = np.where(oval, np.where(big, np.round(cells.aspect[sel] / 0.08), 10), 0).astype(np.int64)
    angle_bins = np.where(big, 8, 4)
    angle_code = np.where(oval, np.round(cells.angle[sel] / np.pi * angle_bins) % angle_bins, 0).astype(np.int64)
    pallor_code = np.where(big, np.round(cells.pallor[sel] / 0.08), 7).astype(np.int64)
    codes = (((((size_code * 16 + aspect_code) * 16 + angle_code) * 16 + pallor_code) * 4 + fx_code) * 4 + fy_code) * 2 + big
    unique, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    tone = cells.tone[sel]
    flat_parts, weight_parts = [], []
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(unique) + 1))
    for k, i in enumerate(first):
        members = order[bounds[k]:bounds[k + 1]]
        aspect = aspect_code[i] * 0.08 if aspect_code[i] and big[i] else (0.78 if aspect_code[i] else 1.0)
        sprite = _rbc_sprite(float(size_code[i] * size_step[i]), float(aspect), float(angle_code[i] * np.pi / angle_bins[i]),
                             float(pallor_code[i] * 0.08), float(fx_code[i] / phases[i]), float(fy_code[i] / phases[i]))
        half = sprite.shape[0] // 2
        offsets = np.arange(sprite.shape[0]) - half
        rows = ay[members, None, None] + offsets[None, :, None]
        cols = ax[members, None, None] + offsets[None, None, :]
        rows, cols = np.broadcast_arrays(rows, cols)
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        values = sprite[None, :, :] * tone[members, None, None]
        flat_parts.append((rows * w + cols)[inside])
        weight_parts.append(values[inside])
    flat = np.concatenate(flat_parts)
    weights = np.concatenate(weight_parts)
    return np.bincount(flat, weights=weights, minlength=h * w).reshape(h, w).astype(np.float32)


def _select(specks: Specks, origin: tuple[float, float], shape: tuple[int, int], px: float, margin: float) -> np.ndarray:
    h, w = shape
    return np.flatnonzero((specks.x > origin[0] - margin) & (specks.x < origin[0] + w * px + margin)
                          & (specks.y > origin[1] - margin) & (specks.y < origin[1] + h * px + margin))


def platelet_density(seed: int, platelets: Specks, origin: tuple[float, float], shape: tuple[int, int],
                     px: float) -> tuple[np.ndarray, np.ndarray]:
    """(pale body, purple granules) density maps of the platelets in the window."""
    sel = _select(platelets, origin, shape, px, 3.0)
    if not sel.size:
        empty = np.zeros(shape, dtype=np.float32)
        return empty, empty
    cx, cy = (platelets.x[sel] - origin[0]) / px, (platelets.y[sel] - origin[1]) / px
    r_px = platelets.r[sel] / px
    # One blur for all platelets of the slide (not of the window), so windows agree.
    body = splat(shape, cx, cy, np.pi * r_px ** 2 * 0.8, float(np.mean(platelets.r)) / px / np.sqrt(2))
    # Three to six granules per platelet, placed by a hash of the platelet's index.
    gx, gy, gw = [], [], []
    for k in range(6):
        present = hash_uniform(seed + 31, sel, np.full(sel.shape, k)) < (1.0 if k < 3 else 0.5)
        ang = 2 * np.pi * hash_uniform(seed + 37, sel, np.full(sel.shape, k))
        rad = 0.55 * platelets.r[sel] * np.sqrt(hash_uniform(seed + 41, sel, np.full(sel.shape, k)))
        gx.append(cx + rad * np.cos(ang) / px)
        gy.append(cy + rad * np.sin(ang) / px)
        gw.append(present * np.pi * (0.22 / px) ** 2 * platelets.tone[sel])
    granules = splat(shape, np.concatenate(gx), np.concatenate(gy), np.concatenate(gw), 0.22 / px / np.sqrt(2))
    return body, granules


def debris_density(debris: Specks, origin: tuple[float, float], shape: tuple[int, int], px: float) -> np.ndarray:
    """Stain precipitate: small dark dots and a few larger specks."""
    sel = _select(debris, origin, shape, px, 2.0)
    out = np.zeros(shape, dtype=np.float32)
    if not sel.size:
        return out
    cx, cy = (debris.x[sel] - origin[0]) / px, (debris.y[sel] - origin[1]) / px
    r_px = debris.r[sel] / px
    large = debris.r > 0.35
    for group in (large, ~large):
        chosen = group[sel]
        if chosen.any():
            sigma = float(np.mean(debris.r[group])) / px / np.sqrt(2)
            out += splat(shape, cx[chosen], cy[chosen], np.pi * r_px[chosen] ** 2 * debris.tone[sel][chosen], sigma)
    return out
