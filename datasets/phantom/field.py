"""Rendering a rectangle of a slide in one domain, with its ground truth.

A :class:`View` fixes where an image lies on the slide and its pixel size; pixels and
boxes both come from it, so the boxes of one cell in different domains describe the same
physical outline.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from smearscope.datasets.phantom.anatomy import anatomy_of
from smearscope.datasets.phantom.cellspec import Cell, attribute_names
from smearscope.datasets.phantom.domains import DomainSpec, domain_spec
from smearscope.datasets.phantom.optics import JPEG_BLOCK, expose
from smearscope.datasets.phantom.params import PhantomConfig, phantom_config
from smearscope.datasets.phantom.scene import cells_in_window, scene_density
from smearscope.datasets.phantom.slide import Slide
from smearscope.datasets.records import Domain, ImageRecord

MIN_VISIBLE = 0.5     # a cell cut by the image border stays in the ground truth if this share shows
RENDER_MARGIN = 32    # pixels rendered around a window so blur and JPEG match the whole image


@dataclass(frozen=True)
class View:
    """An image of ``width`` x ``height`` pixels whose top-left corner lies at ``origin_um`` on the slide."""

    domain: DomainSpec
    origin_um: tuple[float, float]
    width: int
    height: int

    @property
    def px(self) -> float:
        return self.domain.um_per_px

    def to_pixels(self, x_um: np.ndarray, y_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(x_um) - self.origin_um[0]) / self.px, (np.asarray(y_um) - self.origin_um[1]) / self.px


def centred_view(slide: Slide, domain: DomainSpec | str, width: int, height: int | None = None,
                 center_um: tuple[float, float] | None = None) -> View:
    """A view of ``width`` x ``height`` pixels centred on ``center_um`` (default: the slide centre)."""
    spec = domain if isinstance(domain, DomainSpec) else domain_spec(domain)
    height = width if height is None else height
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {width}x{height} is not positive")
    cx, cy = center_um if center_um is not None else slide.center_um
    return View(spec, (cx - width * spec.um_per_px / 2, cy - height * spec.um_per_px / 2), int(width), int(height))


def domain_seed(slide: Slide, domain: DomainSpec) -> int:
    """Seed of a domain's camera noise for this slide (stable across runs and machines)."""
    return (slide.seed * 1_000_003 + zlib.crc32(domain.name.encode())) & 0x7FFFFFFF


def render_view(slide: Slide, view: View, window: tuple[int, int, int, int] | None = None,
                config: PhantomConfig | None = None) -> np.ndarray:
    """RGB uint8 pixels of ``window`` (x0, y0, x1, y1; default the whole view) of the view.

    Windows that start at multiples of 16 pixels give exactly the pixels of the whole image.
    """
    config = config or phantom_config()
    x0, y0, x1, y1 = window if window is not None else (0, 0, view.width, view.height)
    if not (0 <= x0 < x1 <= view.width and 0 <= y0 < y1 <= view.height):
        raise ValueError(f"window {(x0, y0, x1, y1)} is not inside the {view.width}x{view.height} image")
    px0, py0 = max(0, x0 - RENDER_MARGIN), max(0, y0 - RENDER_MARGIN)
    px0, py0 = px0 - px0 % JPEG_BLOCK, py0 - py0 % JPEG_BLOCK
    px1, py1 = min(view.width, x1 + RENDER_MARGIN), min(view.height, y1 + RENDER_MARGIN)
    origin = (view.origin_um[0] + px0 * view.px, view.origin_um[1] + py0 * view.px)
    density = scene_density(slide, origin, (py1 - py0, px1 - px0), view.px, config)
    image = expose(density, view.domain, domain_seed(slide, view.domain), (px0, py0, px1, py1),
                   (view.width, view.height), config)
    return image[y0 - py0:y1 - py0, x0 - px0:x1 - px0]


def cell_box(cell: Cell, view: View, config: PhantomConfig | None = None) -> tuple[np.ndarray, float]:
    """Tight xyxy box of the cell's outline in view pixels (clipped) and the share of it inside the view."""
    from shapely.geometry import Polygon, box

    polygon = anatomy_of(cell, None if config is None or config is phantom_config() else config).outline.polygon()
    xs, ys = view.to_pixels(polygon[:, 0] + cell.x_um, polygon[:, 1] + cell.y_um)
    outline = Polygon(np.stack([xs, ys], axis=1))
    if xs.min() >= 0 and ys.min() >= 0 and xs.max() <= view.width and ys.max() <= view.height:
        return np.array([xs.min(), ys.min(), xs.max(), ys.max()]), 1.0
    visible = outline.intersection(box(0, 0, view.width, view.height))
    if visible.is_empty:
        return np.zeros(4), 0.0
    return np.asarray(visible.bounds, dtype=np.float64), float(visible.area / outline.area)


def view_truth(slide: Slide, view: View, path: str, min_visible: float = MIN_VISIBLE,
               config: PhantomConfig | None = None) -> ImageRecord:
    """Ground truth of a view: every white cell (and artifact) with at least ``min_visible`` in view."""
    size_um = (view.width * view.px, view.height * view.px)
    boxes, cells = [], []
    for cell in cells_in_window(slide, view.origin_um, size_um):
        xyxy, share = cell_box(cell, view, config)
        if share >= min_visible and xyxy[2] > xyxy[0] and xyxy[3] > xyxy[1]:
            boxes.append(xyxy)
            cells.append(cell)
    names = attribute_names()
    spec = view.domain
    return ImageRecord(
        path=path,
        width=view.width,
        height=view.height,
        domain=Domain(source="phantom", microscope=spec.microscope, magnification=spec.magnification, camera=spec.camera,
                      diagnosis=slide.diagnosis, um_per_px=spec.um_per_px),
        boxes_xyxy=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        cell_types=[c.cell_type for c in cells],
        source_labels=[c.source_label for c in cells],
        attributes={name: [c.values[i] for c in cells] for i, name in enumerate(names)},
    )


def render_field(slide: Slide, domain: DomainSpec | str, size: int = 640, center_um: tuple[float, float] | None = None,
                 path: str | None = None, config: PhantomConfig | None = None) -> tuple[np.ndarray, ImageRecord]:
    """A square ``size`` px field of the slide in ``domain`` (e.g. ``"H_100X_C1"``) and its ground truth."""
    view = centred_view(slide, domain, size, size, center_um)
    image = render_view(slide, view, config=config)
    record = view_truth(slide, view, path or f"phantom_{slide.seed}_{view.domain.name}.png", config=config)
    return image, record
