"""Drawing one white cell: its anatomy turned into an optical-density patch at a pixel size."""

from __future__ import annotations

import numpy as np

from smearscope.datasets.phantom.anatomy import Anatomy, Discs
from smearscope.datasets.phantom.geometry import coverage
from smearscope.datasets.phantom.noise import splat, texture
from smearscope.datasets.phantom.params import PhantomConfig

# Texture streams of one cell (added to its seed).
_CHROMATIN, _CLUMPS, _CYTOPLASM, _STREAKS = 11, 13, 17, 19
# Pixels larger than this (um) cannot show chromatin texture or single granules: those are
# drawn as their average, which is what such a pixel records anyway.
LOW_DETAIL_PX = 0.6


def _smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _disc_coverage(discs: Discs, x: np.ndarray, y: np.ndarray, px: float) -> np.ndarray:
    """Coverage of a set of round spots (their union)."""
    if not len(discs):
        return np.zeros(x.shape, dtype=np.float32)
    d = np.full(x.shape, np.inf)
    for cx, cy, r in zip(discs.x, discs.y, discs.r):
        d = np.minimum(d, np.hypot(x - cx, y - cy) - r)
    return np.clip(0.5 - d / px, 0.0, 1.0).astype(np.float32)


def _chromatin(anatomy: Anatomy, x: np.ndarray, y: np.ndarray, px: float) -> np.ndarray | float:
    """Nuclear density: fine and smooth for open chromatin, dark clumps for coarse chromatin."""
    if px > LOW_DETAIL_PX:
        if anatomy.streak_angle is not None:
            return anatomy.nucleus_density * (0.45 + 0.5 * anatomy.chromatin_contrast)
        if anatomy.coarse_chromatin:
            return anatomy.nucleus_density * (0.62 + 0.4 * anatomy.chromatin_contrast)
        return anatomy.nucleus_density
    grain = anatomy.chromatin_grain_um
    seed = anatomy.seed
    if anatomy.streak_angle is not None:
        c, s = np.cos(anatomy.streak_angle), np.sin(anatomy.streak_angle)
        # Smeared chromatin: a lacy net drawn out along the smear direction.
        u, v = (x * c + y * s) / 1.8, (-x * s + y * c)
        net = texture(seed + _STREAKS, u, v, 0.7, px, octaves=3) + 0.6 * texture(seed + _CLUMPS, x, y, 1.6, px)
        return anatomy.nucleus_density * (0.4 + anatomy.chromatin_contrast * _smoothstep(-0.25, 0.55, net))
    fine = texture(seed + _CHROMATIN, x, y, grain, px)
    if not anatomy.coarse_chromatin:
        return anatomy.nucleus_density * (1.0 + anatomy.chromatin_contrast * fine)
    clumps = texture(seed + _CLUMPS, x, y, grain, px, octaves=3)
    visible = min(1.0, grain / px)
    blotches = visible * _smoothstep(-0.05, 0.35, clumps) + (1 - visible) * 0.4
    return anatomy.nucleus_density * (0.62 + anatomy.chromatin_contrast * blotches + 0.08 * fine)


def _granule_density(anatomy: Anatomy, cx: float, cy: float, px: float, shape: tuple[int, int],
                     cell: np.ndarray) -> np.ndarray:
    """Granules as dots, or, in pixels too coarse to show them, as their mass spread over the cell."""
    if px > LOW_DETAIL_PX:
        mass = sum(np.pi * float(np.sum(g.r ** 2)) * g.density for g in anatomy.granules)
        area = float(cell.sum()) * px * px
        return (mass / max(area, 1e-9)).astype(np.float32)[None, None, :]
    out = np.zeros(shape + (3,), dtype=np.float32)
    for granules in anatomy.granules:
        if not len(granules.x):
            continue
        r_px = granules.r / px
        layer = splat(shape, cx + granules.x / px, cy + granules.y / px, np.pi * r_px ** 2,
                      float(np.mean(r_px)) / np.sqrt(2.0))
        out += layer[:, :, None] * granules.density[None, None, :]
    return out


def draw_cell(anatomy: Anatomy, cx: float, cy: float, px: float, config: PhantomConfig) -> tuple[np.ndarray, int, int]:
    """Optical density (h, w, 3) of the cell centred at pixel position ``cx, cy``, and the patch origin.

    ``px`` is the pixel size in micrometres. Pixel ``i`` spans ``[i, i + 1)``.
    """
    x0b, y0b, x1b, y1b = anatomy.outline.bounds()
    x0 = int(np.floor(cx + x0b / px)) - 2
    y0 = int(np.floor(cy + y0b / px)) - 2
    w = int(np.ceil(cx + x1b / px)) + 3 - x0
    h = int(np.ceil(cy + y1b / px)) + 3 - y0
    x = ((x0 + np.arange(w) + 0.5) - cx) * px
    y = ((y0 + np.arange(h) + 0.5) - cy) * px
    x, y = np.meshgrid(x, y)
    stains = config.stains

    outline = anatomy.outline.distance(x, y)
    cyto = np.clip(0.5 - outline / px, 0.0, 1.0).astype(np.float32)
    vac = _disc_coverage(anatomy.vacuoles, x, y, px) * anatomy.vacuole_clearing
    if anatomy.nucleus is not None:
        depth = -anatomy.nucleus_distance(x, y, outline)
        nuc = np.clip(0.5 + depth / px, 0.0, 1.0).astype(np.float32)
        nucleoli = _disc_coverage(anatomy.nucleoli, x, y, px)
        # Chromatin gathers along the nuclear membrane: a slightly darker rim.
        rim = 1.0 + 0.22 * np.exp(-np.maximum(depth, 0.0) / max(0.3, px))
        density = _chromatin(anatomy, x, y, px) * rim
        if anatomy.creases is not None:
            density = density * (1.0 - 0.22 * coverage(anatomy.creases, x, y, px))
        nuclear = nuc * density * (1.0 - anatomy.nucleolus_clearing * nucleoli) * (1.0 - 0.6 * vac)
        if anatomy.bridges is not None:
            bridge = coverage(anatomy.bridges, x, y, px) * (1.0 - nuc)
            nuclear = nuclear + bridge * anatomy.nucleus_density * 0.55
            nuc = np.maximum(nuc, bridge)
        tint = nuc * nucleoli * anatomy.nucleolus_tint
    else:
        nuc = np.zeros_like(cyto)
        nuclear = nuc
        tint = nuc
    cytoplasm = cyto * (1.0 - 0.85 * nuc) * (1.0 - vac)
    if px <= LOW_DETAIL_PX:
        cytoplasm = cytoplasm * (1.0 + anatomy.cytoplasm_texture * texture(anatomy.seed + _CYTOPLASM, x, y, 0.6, px))

    od = (cytoplasm[:, :, None] * anatomy.cytoplasm_od
          + nuclear[:, :, None] * stains["nucleus"]
          + tint[:, :, None] * stains["nucleolus"])
    if anatomy.granules:
        clear = cyto * (1.0 - vac)
        od += _granule_density(anatomy, cx - x0, cy - y0, px, (h, w), clear) * clear[:, :, None]
    if anatomy.rods is not None:
        od += (coverage(anatomy.rods, x, y, px) * 1.8)[:, :, None] * stains["auer_rod"]
    return od.astype(np.float32), x0, y0
