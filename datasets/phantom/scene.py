"""Optical density of a window of a slide: plasma, red cells, platelets, debris and white cells."""

from __future__ import annotations

import cv2
import numpy as np

from smearscope.datasets.phantom.anatomy import anatomy_of
from smearscope.datasets.phantom.background import debris_density, mottle, plasma_density, platelet_density, red_cell_density
from smearscope.datasets.phantom.cells import draw_cell
from smearscope.datasets.phantom.cellspec import Cell
from smearscope.datasets.phantom.params import PhantomConfig, phantom_config
from smearscope.datasets.phantom.slide import Slide


def cells_in_window(slide: Slide, origin: tuple[float, float], size_um: tuple[float, float]) -> list[Cell]:
    """White cells whose outline may reach into the window (in slide order)."""
    x0, y0 = origin
    x1, y1 = x0 + size_um[0], y0 + size_um[1]
    return [c for c in slide.cells
            if c.x_um + c.reach_um > x0 and c.x_um - c.reach_um < x1 and c.y_um + c.reach_um > y0 and c.y_um - c.reach_um < y1]


def add_patch(canvas: np.ndarray, patch: np.ndarray, x0: int, y0: int) -> None:
    """Add ``patch`` into ``canvas`` at ``(x0, y0)``, clipping what falls outside."""
    h, w = canvas.shape[:2]
    ph, pw = patch.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + pw, w), min(y0 + ph, h)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    canvas[cy0:cy1, cx0:cx1] += patch[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]


def scene_density(slide: Slide, origin: tuple[float, float], shape: tuple[int, int], px: float,
                  config: PhantomConfig | None = None) -> np.ndarray:
    """Optical density (h, w, 3) float32 of the slide window whose top-left pixel corner is ``origin`` um."""
    config = config or phantom_config()
    stains = config.stains
    h, w = shape
    body, granules = platelet_density(slide.seed, slide.platelets, origin, shape, px)
    layers = cv2.merge([
        plasma_density(slide.seed, origin, shape, px),
        red_cell_density(slide.red_cells, origin, shape, px) * mottle(slide.seed, origin, shape, px),
        body,
        granules + debris_density(slide.debris, origin, shape, px),
    ])
    mixing = np.stack([stains["plasma"], stains["rbc"], stains["platelet"], stains["debris"]], axis=1)
    od = cv2.transform(layers, mixing.astype(np.float32))
    for cell in cells_in_window(slide, origin, (w * px, h * px)):
        anatomy = anatomy_of(cell, None if config is phantom_config() else config)
        patch, x0, y0 = draw_cell(anatomy, (cell.x_um - origin[0]) / px, (cell.y_um - origin[1]) / px, px, config)
        add_patch(od, patch, x0, y0)
    od *= np.float32(slide.stain_gain)
    return od
