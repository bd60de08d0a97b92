"""A contact sheet: one phantom cell per LeukemiaAttri class (rows) in every domain (columns)."""

from __future__ import annotations

import cv2
import numpy as np
from tqdm import tqdm

from smearscope.datasets.phantom.anatomy import anatomy_of
from smearscope.datasets.phantom.cellspec import leukemiaattri_types, source_labels
from smearscope.datasets.phantom.domains import parse_domains
from smearscope.datasets.phantom.field import centred_view, render_view
from smearscope.datasets.phantom.slide import Slide, single_cell_slide

LABEL_WIDTH = 190
HEADER_HEIGHT = 34
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _fit(image: np.ndarray, tile: int) -> np.ndarray:
    """Scale a square crop to ``tile`` pixels; enlarged low-magnification pixels stay visible as blocks."""
    scale = tile / image.shape[0]
    if scale < 1:
        method = cv2.INTER_AREA
    elif scale > 2:
        method = cv2.INTER_NEAREST
    else:
        method = cv2.INTER_LINEAR
    return cv2.resize(image, (tile, tile), interpolation=method)


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.45) -> None:
    cv2.putText(canvas, text, (x, y), FONT, scale, (30, 30, 30), 1, cv2.LINE_AA)


def _example(seed: int, cell_type: str, extent_um: float) -> Slide:
    """A slide with one typical cell of ``cell_type``; the "None" class shows a smudge cell."""
    for attempt in range(64):
        slide = single_cell_slide(seed + 7919 * attempt, cell_type, typical=True, extent_um=extent_um)
        if cell_type != "artifact" or anatomy_of(slide.cells[0]).kind == "smudge":
            return slide
    return slide


def contact_sheet(seed: int = 0, domains: str | list[str] | None = None, tile: int = 112, window_um: float = 26.0,
                  progress: bool = False) -> np.ndarray:
    """RGB uint8 sheet: each row one class (its most typical attributes), each column one domain.

    Every tile shows the same ``window_um`` square of the same slide, so the columns compare
    how one physical cell looks under each microscope, magnification and camera.
    """
    specs = parse_domains(domains)
    types = leukemiaattri_types()
    labels = source_labels()
    height = HEADER_HEIGHT + tile * len(types)
    width = LABEL_WIDTH + tile * len(specs)
    sheet = np.full((height, width, 3), 255, dtype=np.uint8)
    for j, spec in enumerate(specs):
        _text(sheet, spec.name, LABEL_WIDTH + j * tile + 6, HEADER_HEIGHT - 12, 0.42)
    for i, cell_type in enumerate(tqdm(types, desc="contact sheet", unit="class", disable=not progress)):
        slide = _example(seed * 101 + i, cell_type, window_um + 8.0)
        top = HEADER_HEIGHT + i * tile
        _text(sheet, labels[cell_type], 8, top + tile // 2 - 4)
        _text(sheet, f"({cell_type})" if labels[cell_type] == "None" else "", 8, top + tile // 2 + 16, 0.38)
        for j, spec in enumerate(specs):
            side = max(4, int(round(window_um / spec.um_per_px)))
            crop = render_view(slide, centred_view(slide, spec, side, side))
            sheet[top:top + tile, LABEL_WIDTH + j * tile:LABEL_WIDTH + (j + 1) * tile] = _fit(crop, tile)
    return sheet
