"""Reading captures of any size region by region, as RGB uint8.

``open_capture(path)`` picks a reader by file type:

- JPEG, PNG, BMP: decoded once into memory through ``datasets.io.read_image``.
- TIFF: uncompressed contiguous images are memory-mapped; tiled or striped images are read
  segment by segment (only the tiles or strips a region touches, kept in an LRU cache of
  at most ``SEGMENT_CACHE_BYTES``), so memory stays bounded however large the file is
  (a file stored as one compressed strip is one segment: it is decoded whole). TIFFs
  that cannot be read by region (other pixel types or colour layouts, codecs that need
  imagecodecs) are decoded whole when small enough, by tifffile or else Pillow.
- OpenSlide formats (.svs, .ndpi, .mrxs, ...) through the ``openslide`` module.

Every reader has ``width``, ``height``, ``read_region``, ``read_scaled_region`` and
``close`` (also as a context manager). Bad input raises a one-line ``ValueError`` naming
the file.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np

from smearscope.datasets.io import read_image, to_rgb_uint8

OPENSLIDE_SUFFIXES = (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".svslide", ".bif")
TIFF_SUFFIXES = (".tif", ".tiff")
WHOLE_DECODE_MAX_PIXELS = 100_000_000
SEGMENT_CACHE_BYTES = 256 * 2**20  # holds a 640-row band of strips up to ~130k px wide


class CaptureReader:
    """A capture that can be read region by region; subclasses implement ``_read``."""

    def __init__(self, path: str, width: int, height: int) -> None:
        self.path = path
        self.width = int(width)
        self.height = int(height)

    def _read(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        raise NotImplementedError

    def _check_region(self, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
        region = tuple(int(v) for v in (x0, y0, x1, y1))
        rx0, ry0, rx1, ry1 = region
        if not (0 <= rx0 < rx1 <= self.width and 0 <= ry0 < ry1 <= self.height):
            raise ValueError(f"{self.path}: region {list(region)} is empty or outside the {self.width}x{self.height} capture")
        return rx0, ry0, rx1, ry1

    def read_region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Pixels ``[y0:y1, x0:x1]`` as RGB uint8 (y1 - y0, x1 - x0, 3)."""
        return self._read(*self._check_region(x0, y0, x1, y1))

    def read_scaled_region(
        self, x0: int, y0: int, x1: int, y1: int, out_width: int, out_height: int
    ) -> np.ndarray:
        """Region ``[y0:y1, x0:x1]`` resized to ``out_width`` x ``out_height`` (area
        averaging when shrinking, bilinear when enlarging), RGB uint8."""
        region = self.read_region(x0, y0, x1, y1)
        return resize_rgb(region, out_width, out_height)

    def close(self) -> None:
        """Release the file; reading afterwards is an error."""

    def __enter__(self) -> "CaptureReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, {self.width}x{self.height})"


def resize_rgb(image: np.ndarray, out_width: int, out_height: int) -> np.ndarray:
    """``image`` resized to ``out_width`` x ``out_height``: INTER_AREA to shrink, else linear."""
    import cv2

    if out_width < 1 or out_height < 1:
        raise ValueError(f"output size {out_width}x{out_height} is not positive")
    height, width = image.shape[:2]
    if (width, height) == (out_width, out_height):
        return image
    shrink = out_width * out_height < width * height
    interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (int(out_width), int(out_height)), interpolation=interpolation)


class ArrayCapture(CaptureReader):
    """A capture held in memory (ordinary images, or any array)."""

    def __init__(self, image: np.ndarray, path: str = "<array>") -> None:
        self._image = to_rgb_uint8(np.asarray(image), path)
        super().__init__(path, self._image.shape[1], self._image.shape[0])

    def _read(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        if self._image is None:
            raise ValueError(f"{self.path}: capture is closed")
        return self._image[y0:y1, x0:x1].copy()

    def close(self) -> None:
        self._image = None


class NotRegionReadable(ValueError):
    """A TIFF whose layout or compression cannot be read region by region."""

    def __init__(self, message: str, pixels: int) -> None:
        super().__init__(message)
        self.pixels = pixels


class TiffCapture(CaptureReader):
    """The first page of a TIFF, read by region: memory-mapped when uncompressed and
    contiguous, else decoded tile by tile (or strip by strip) with an LRU cache."""

    def __init__(self, path: str, cache_bytes: int = SEGMENT_CACHE_BYTES) -> None:
        import tifffile

        self._tif = _open_tiff_file(path)
        page = self._tif.pages[0]
        reason = _region_reading_problem(page)
        if reason:
            self._tif.close()
            raise NotRegionReadable(f"{path}: {reason}", page.imagewidth * page.imagelength)
        super().__init__(path, page.imagewidth, page.imagelength)
        self._page = page
        self._planes, _, _, _, self._contig = page.shaped
        self._cache: OrderedDict[int, np.ndarray | None] = OrderedDict()
        self._cache_bytes = int(cache_bytes)
        self._memmap = None
        if page.is_memmappable:
            try:
                mapped = tifffile.memmap(path, page=0, mode="r")
            except (ValueError, OSError) as exc:
                self._tif.close()
                raise ValueError(f"{path}: cannot map the TIFF pixels ({_one_line(exc)})") from None
            self._memmap = mapped.reshape(page.shaped)
        elif page.is_tiled:
            self._seg_h, self._seg_w = page.tilelength, page.tilewidth
        else:
            self._seg_h, self._seg_w = min(page.rowsperstrip, page.imagelength), page.imagewidth

    def _read(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        if self._tif is None:
            raise ValueError(f"{self.path}: capture is closed")
        if self._memmap is not None:
            planes = np.asarray(self._memmap[:, 0, y0:y1, x0:x1, :])
        else:
            planes = self._read_segments(x0, y0, x1, y1)
        pixels = np.moveaxis(planes, 0, 2).reshape(y1 - y0, x1 - x0, -1)
        return to_rgb_uint8(pixels, self.path)

    def _read_segments(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """(planes, h, w, contig samples) pixels assembled from the segments they lie in."""
        page = self._page
        out = np.zeros((self._planes, y1 - y0, x1 - x0, self._contig), dtype=page.dtype)
        rows = math.ceil(page.imagelength / self._seg_h)
        cols = math.ceil(page.imagewidth / self._seg_w)
        for plane in range(self._planes):
            for row in range(y0 // self._seg_h, (y1 - 1) // self._seg_h + 1):
                for col in range(x0 // self._seg_w, (x1 - 1) // self._seg_w + 1):
                    segment = self._segment(plane * rows * cols + row * cols + col)
                    if segment is None:
                        continue
                    sy, sx = row * self._seg_h, col * self._seg_w
                    ty0, ty1 = max(y0, sy), min(y1, sy + segment.shape[0])
                    tx0, tx1 = max(x0, sx), min(x1, sx + segment.shape[1])
                    if ty0 < ty1 and tx0 < tx1:
                        out[plane, ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0] = segment[ty0 - sy:ty1 - sy, tx0 - sx:tx1 - sx]
        return out

    def _segment(self, index: int) -> np.ndarray | None:
        """Decoded segment ``index`` as (rows, cols, contig samples); None when empty."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        page = self._page
        offsets, counts = page.dataoffsets, page.databytecounts
        if index >= len(offsets):
            raise ValueError(f"{self.path}: TIFF has {len(offsets)} segments, segment {index} is missing")
        try:
            data = None
            if counts[index] > 0:
                for data, _ in self._tif.filehandle.read_segments([offsets[index]], [counts[index]], [index]):
                    break
            segment, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
        except Exception as exc:  # decoders raise many types for damaged data
            raise ValueError(f"{self.path}: damaged TIFF segment {index} ({_one_line(exc)})") from None
        if segment is not None:
            segment = segment.reshape(segment.shape[-3:])
        self._cache[index] = segment
        while len(self._cache) > 1 and sum(s.nbytes for s in self._cache.values() if s is not None) > self._cache_bytes:
            self._cache.popitem(last=False)
        return segment

    def close(self) -> None:
        if self._tif is not None:
            self._tif.close()
        self._tif = None
        self._memmap = None
        self._cache.clear()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _open_tiff_file(path: str):
    """A ``tifffile.TiffFile`` with at least one page; ``ValueError`` if unreadable."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:  # tifffile raises many types for broken files
        raise ValueError(f"{path}: unreadable TIFF ({_one_line(exc)})") from None
    if not len(tif.pages):
        tif.close()
        raise ValueError(f"{path}: TIFF holds no image")
    return tif


def _region_reading_problem(page) -> str:
    """Why the page cannot be read by region (empty string when it can)."""
    planes, depth, _, _, contig = page.shaped
    samples = planes * contig
    if depth != 1:
        return "volumetric TIFF pages are not supported"
    if page.dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        return f"TIFF pixel type {page.dtype} cannot be read by region"
    if not ((page.photometric == 1 and samples == 1) or (page.photometric == 2 and samples in (3, 4))):
        return f"TIFF colour layout (photometric {int(page.photometric)}, {samples} samples) cannot be read by region"
    if page.is_memmappable:
        return ""
    try:
        page.decode(None, 0)
    except Exception as exc:  # the decoder factory raises when a codec is missing
        return f"TIFF compression {page.compression.name} cannot be decoded ({_one_line(exc)}; install imagecodecs)"
    return ""


def _open_tiff(path: str) -> CaptureReader:
    """Read by region when the layout allows it; decode small other TIFFs whole."""
    try:
        return TiffCapture(path)
    except NotRegionReadable as exc:
        if exc.pixels > WHOLE_DECODE_MAX_PIXELS:
            raise ValueError(f"{exc}, and at {exc.pixels} pixels it is too large to decode whole") from None
        try:
            return ArrayCapture(read_image(path), path)
        except ValueError:
            return ArrayCapture(_decode_with_pillow(path, str(exc)), path)


def _decode_with_pillow(path: str, reason: str) -> np.ndarray:
    """The whole first page decoded by Pillow (it reads LZW and PackBits without imagecodecs)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode not in ("RGB", "RGBA", "L", "I;16", "I;16B", "I;16L"):
                image = image.convert("RGB")
            return np.asarray(image)
    except Exception:  # Pillow raises many types for files it cannot decode
        raise ValueError(reason) from None


class OpenSlideCapture(CaptureReader):
    """A whole-slide image read through OpenSlide (level 0 = full resolution)."""

    def __init__(self, path: str) -> None:
        try:
            import openslide
        except ImportError:
            raise ValueError(f"{path}: reading {Path(path).suffix} slides needs OpenSlide; install openslide-python (and openslide-bin)") from None
        try:
            self._slide = openslide.OpenSlide(path)
        except Exception as exc:  # OpenSlideError, OpenSlideUnsupportedFormatError, OSError
            raise ValueError(f"{path}: unreadable slide ({_one_line(exc)})") from None
        width, height = self._slide.dimensions
        super().__init__(path, width, height)

    def _open_slide(self):
        if self._slide is None:
            raise ValueError(f"{self.path}: capture is closed")
        return self._slide

    def _read_level(self, x0: int, y0: int, level: int, width: int, height: int) -> np.ndarray:
        """``width`` x ``height`` pixels of ``level`` from level-0 point (x0, y0), on white."""
        rgba = np.asarray(self._open_slide().read_region((x0, y0), level, (width, height)), dtype=np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        rgb = rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)

    def _read(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        return self._read_level(x0, y0, 0, x1 - x0, y1 - y0)

    def read_scaled_region(
        self, x0: int, y0: int, x1: int, y1: int, out_width: int, out_height: int
    ) -> np.ndarray:
        """As ``CaptureReader.read_scaled_region``, reading from the best pyramid level."""
        x0, y0, x1, y1 = self._check_region(x0, y0, x1, y1)
        slide = self._open_slide()
        downsample = max(1.0, min((x1 - x0) / out_width, (y1 - y0) / out_height))
        level = slide.get_best_level_for_downsample(downsample)
        factor = slide.level_downsamples[level]
        width = max(1, round((x1 - x0) / factor))
        height = max(1, round((y1 - y0) / factor))
        return resize_rgb(self._read_level(x0, y0, level, width, height), out_width, out_height)

    def close(self) -> None:
        if self._slide is not None:
            self._slide.close()
        self._slide = None


def open_capture(path: str | Path) -> CaptureReader:
    """A reader for the capture at ``path``; ``ValueError`` naming the file if it is bad."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: capture file not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    suffix = path.suffix.lower()
    if suffix in OPENSLIDE_SUFFIXES:
        return OpenSlideCapture(str(path))
    if suffix in TIFF_SUFFIXES:
        return _open_tiff(str(path))
    return ArrayCapture(read_image(path), str(path))
