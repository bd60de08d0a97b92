"""Large phantom captures (e.g. 6000 x 4000 px or a 20000 x 20000 px scan), rendered in chunks.

A capture is one view of a slide as large as the image; it is rendered window by window,
so memory stays bounded by one strip of windows. Chunk borders start at multiples of 16
pixels, which gives the same pixels as rendering the image in one go.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from smearscope.datasets.io import write_bytes_atomic
from smearscope.datasets.phantom.domains import DomainSpec, domain_spec
from smearscope.datasets.phantom.field import View, render_view, view_truth
from smearscope.datasets.phantom.slide import Slide, make_slide
from smearscope.datasets.records import ImageRecord

CHUNK_PX = 1024   # rendering window; a multiple of TIFF_TILE so strips hold whole tile rows
TIFF_TILE = 256
PNG_LIMIT_PX = 64_000_000  # above this, save_capture needs a .tif path (a PNG is encoded in memory)


def capture_view(slide: Slide, domain: DomainSpec, width: int, height: int) -> View:
    """The view covering a capture slide from its top-left corner."""
    return View(domain, (0.0, 0.0), int(width), int(height))


def capture_slide(seed: int, width: int, height: int, domain: DomainSpec, diagnosis: str | None = None,
                  wbc_per_mm2: float | None = None) -> Slide:
    """A slide exactly as large as a ``width`` x ``height`` px capture in ``domain``."""
    if width < 16 or height < 16:
        raise ValueError(f"capture size {width}x{height} is too small (at least 16x16 pixels)")
    return make_slide(seed, width * domain.um_per_px, height * domain.um_per_px, diagnosis=diagnosis,
                      wbc_per_mm2=wbc_per_mm2)


def _strip_windows(view: View, chunk: int) -> Iterator[tuple[int, int, list[tuple[int, int, int, int]]]]:
    """(y0, y1, windows of that strip), row by row."""
    if chunk % 16:
        raise ValueError(f"chunk size {chunk} must be a multiple of 16 pixels")
    for y0 in range(0, view.height, chunk):
        y1 = min(view.height, y0 + chunk)
        yield y0, y1, [(x0, y0, min(view.width, x0 + chunk), y1) for x0 in range(0, view.width, chunk)]


def iter_strips(slide: Slide, view: View, chunk: int = CHUNK_PX, progress: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, RGB uint8 strip of ``chunk`` rows) for the whole view, top to bottom."""
    strips = list(_strip_windows(view, chunk))
    bar = tqdm(total=sum(len(w) for _, _, w in strips), desc="rendering capture", unit="chunk", disable=not progress)
    try:
        for y0, y1, windows in strips:
            strip = np.empty((y1 - y0, view.width, 3), dtype=np.uint8)
            for window in windows:
                strip[:, window[0]:window[2]] = render_view(slide, view, window)
                bar.update(1)
            yield y0, strip
    finally:
        bar.close()


def _capture(seed: int, width: int, height: int, magnification: str, microscope: str, camera: str,
             diagnosis: str | None, wbc_per_mm2: float | None) -> tuple[Slide, View]:
    domain = domain_spec(f"{microscope}_{magnification}_{camera}")
    slide = capture_slide(seed, width, height, domain, diagnosis, wbc_per_mm2)
    return slide, capture_view(slide, domain, width, height)


def render_capture(
    seed: int,
    width: int = 6000,
    height: int = 4000,
    magnification: str = "40X",
    microscope: str = "H",
    camera: str = "C1",
    *,
    diagnosis: str | None = None,
    wbc_per_mm2: float | None = None,
    chunk: int = CHUNK_PX,
    progress: bool = False,
) -> tuple[np.ndarray, ImageRecord]:
    """A whole capture in memory (RGB uint8) and its ground truth; see :func:`save_capture` for huge ones."""
    slide, view = _capture(seed, width, height, magnification, microscope, camera, diagnosis, wbc_per_mm2)
    image = _assemble(iter_strips(slide, view, chunk, progress), width, height)
    return image, view_truth(slide, view, f"phantom_capture_{seed}_{view.domain.name}.png")


def _assemble(strips: Iterator[tuple[int, np.ndarray]], width: int, height: int) -> np.ndarray:
    """The whole RGB image from its strips."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    for y0, strip in strips:
        image[y0:y0 + strip.shape[0]] = strip
    return image


def _tiles(strips: Iterator[tuple[int, np.ndarray]], width: int, tile: int) -> Iterator[np.ndarray]:
    """Row-major ``tile`` x ``tile`` tiles (zero-padded at the edges) from strips of a multiple of ``tile`` rows."""
    for _, strip in strips:
        for t0 in range(0, strip.shape[0], tile):
            rows = strip[t0:t0 + tile]
            for x0 in range(0, width, tile):
                block = np.zeros((tile, tile, 3), dtype=np.uint8)
                part = rows[:, x0:x0 + tile]
                block[:part.shape[0], :part.shape[1]] = part
                yield block


def _write_tiff(path: Path, strips: Iterator[tuple[int, np.ndarray]], width: int, height: int) -> None:
    import tifffile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        # One encoding thread: tifffile's thread pool would first gather hundreds of MB of tiles.
        tifffile.imwrite(tmp, _tiles(strips, width, TIFF_TILE), shape=(height, width, 3), dtype=np.uint8,
                         tile=(TIFF_TILE, TIFF_TILE), photometric="rgb", compression="zlib", maxworkers=1,
                         bigtiff=width * height * 3 > 2**31)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_capture(
    out_path: str | Path,
    seed: int,
    width: int = 6000,
    height: int = 4000,
    magnification: str = "40X",
    microscope: str = "H",
    camera: str = "C1",
    *,
    diagnosis: str | None = None,
    wbc_per_mm2: float | None = None,
    progress: bool = False,
) -> tuple[Path, Path]:
    """Write a capture (``.png``, or a tiled ``.tif`` streamed chunk by chunk) and its COCO ground truth.

    The ground truth goes beside the image as ``<stem>.json`` (COCO, with the LeukemiaAttri
    attribute keys). Returns (image path, JSON path).
    """
    from smearscope.datasets.formats.coco import save_coco

    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in (".png", ".tif", ".tiff"):
        raise ValueError(f"{out_path}: capture must be written as .png, .tif or .tiff")
    if suffix == ".png" and width * height > PNG_LIMIT_PX:
        raise ValueError(f"{out_path}: a {width}x{height} capture is too large for PNG (encoded in memory); use .tif")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    slide, view = _capture(seed, width, height, magnification, microscope, camera, diagnosis, wbc_per_mm2)
    strips = iter_strips(slide, view, CHUNK_PX, progress)
    if suffix == ".png":
        image = _assemble(strips, width, height)
        ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError(f"{out_path}: PNG encoding failed")
        del image
        write_bytes_atomic(out_path, data.tobytes())
    else:
        _write_tiff(out_path, strips, width, height)
    record = view_truth(slide, view, str(out_path))
    json_path = save_coco([record], out_path.with_suffix(".json"), image_root=out_path.parent)
    return out_path, json_path
