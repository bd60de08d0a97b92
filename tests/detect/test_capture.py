"""Capture readers: every format read by region, bad input rejected in one line."""

from __future__ import annotations

import importlib.util
import tracemalloc

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from smearscope.datasets.io import read_image
from smearscope.detect.capture import ArrayCapture, TiffCapture, open_capture

REGIONS = [(0, 0, 301, 207), (255, 150, 258, 153), (100, 3, 101, 200), (0, 0, 1, 1), (200, 100, 301, 207)]


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (207, 301, 3), dtype=np.uint8)


def _write_cv2(path, rgb_image):
    assert cv2.imwrite(str(path), rgb_image[:, :, ::-1] if rgb_image.ndim == 3 else rgb_image)
    return path


TIFF_LAYOUTS = {
    "tiled": dict(tile=(64, 64)),
    "tiled_deflate": dict(tile=(32, 48), compression="zlib"),
    "one_strip": dict(),
    "strips_deflate": dict(rowsperstrip=10, compression="zlib"),
    "strips_raw": dict(rowsperstrip=7),
}


@pytest.mark.parametrize("layout", sorted(TIFF_LAYOUTS))
def test_tiff_layouts_read_by_region(tmp_path, rgb, layout):
    path = tmp_path / f"{layout}.tif"
    tifffile.imwrite(path, rgb, photometric="rgb", **TIFF_LAYOUTS[layout])
    with open_capture(path) as reader:
        assert isinstance(reader, TiffCapture)
        assert (reader.width, reader.height) == (301, 207)
        for x0, y0, x1, y1 in REGIONS:
            region = reader.read_region(x0, y0, x1, y1)
            assert region.dtype == np.uint8 and region.flags.c_contiguous
            assert np.array_equal(region, rgb[y0:y1, x0:x1])


def test_tiff_planar_separate_and_16_bit_grey(tmp_path, rgb):
    planar = tmp_path / "planar.tif"
    tifffile.imwrite(planar, np.moveaxis(rgb, 2, 0), photometric="rgb", planarconfig="separate", rowsperstrip=16, compression="zlib")
    with open_capture(planar) as reader:
        assert np.array_equal(reader.read_region(10, 20, 200, 150), rgb[20:150, 10:200])
    grey = tmp_path / "grey16.tif"
    values = np.random.default_rng(1).integers(0, 65536, (90, 120), dtype=np.uint16)
    tifffile.imwrite(grey, values, tile=(32, 32))
    with open_capture(grey) as reader:
        region = reader.read_region(5, 7, 100, 80)
        assert region.shape == (73, 95, 3)
        assert np.array_equal(region, read_image(grey)[7:80, 5:100])
        assert np.array_equal(region[:, :, 0], (values[7:80, 5:100] >> 8).astype(np.uint8))


def test_lzw_tiff_is_decoded_whole_without_imagecodecs(tmp_path, rgb):
    path = tmp_path / "lzw.tif"
    Image.fromarray(rgb).save(path, compression="tiff_lzw")
    with open_capture(path) as reader:
        assert np.array_equal(reader.read_region(3, 4, 250, 200), rgb[4:200, 3:250])


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".jpg"])
def test_ordinary_images(tmp_path, rgb, suffix):
    if suffix == ".jpg":  # smooth content, which JPEG keeps closely
        rgb = cv2.GaussianBlur(rgb, (0, 0), 8)
    path = _write_cv2(tmp_path / f"image{suffix}", rgb)
    with open_capture(path) as reader:
        assert isinstance(reader, ArrayCapture)
        assert (reader.width, reader.height) == (301, 207)
        region = reader.read_region(50, 60, 250, 200)
        expected = rgb[60:200, 50:250]
        if suffix == ".jpg":
            assert np.abs(region.astype(int) - expected).mean() < 3
        else:
            assert np.array_equal(region, expected)


def test_grey_rgba_and_16_bit_pngs_become_rgb_uint8(tmp_path, rgb):
    grey = _write_cv2(tmp_path / "grey.png", rgb[:, :, 0])
    rgba_path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])).save(rgba_path)
    deep = _write_cv2(tmp_path / "deep.png", rgb.astype(np.uint16) * 257)
    with open_capture(grey) as reader:
        assert np.array_equal(reader.read_region(0, 0, 5, 5), np.repeat(rgb[:5, :5, :1], 3, axis=2))
    with open_capture(rgba_path) as reader:
        assert np.array_equal(reader.read_region(0, 0, 5, 5), rgb[:5, :5])
    with open_capture(deep) as reader:
        assert np.array_equal(reader.read_region(0, 0, 301, 207), rgb)


def _truncated(path, data, keep):
    path.write_bytes(data[:keep])
    return path


@pytest.mark.parametrize("case,message", [
    ("missing", "not found"),
    ("empty", "empty file"),
    ("garbage_png", "not a readable image"),
    ("truncated_jpg", "truncated"),
    ("truncated_png", "truncated"),
    ("garbage_tif", "unreadable TIFF"),
    ("truncated_tif", "TIFF"),
])
def test_bad_files_raise_one_line_naming_the_file(tmp_path, rgb, case, message):
    path = tmp_path / f"{case}.{case.rsplit('_', 1)[-1]}"
    if case == "empty":
        path.write_bytes(b"")
    elif case.startswith("garbage"):
        path.write_bytes(b"this is not an image at all" * 10)
    elif case == "truncated_jpg":
        ok, data = cv2.imencode(".jpg", rgb)
        _truncated(path, data.tobytes(), 2000)
    elif case == "truncated_png":
        ok, data = cv2.imencode(".png", rgb)
        _truncated(path, data.tobytes(), len(data) // 2)
    elif case == "truncated_tif":
        full = tmp_path / "full.tif"
        tifffile.imwrite(full, rgb, tile=(64, 64), compression="zlib")
        data = full.read_bytes()
        _truncated(path, data, len(data) // 2)
    with pytest.raises(ValueError) as caught:
        with open_capture(path) as reader:
            reader.read_region(0, 0, reader.width, reader.height)
    text = str(caught.value)
    assert str(path) in text and message in text and "\n" not in text


def test_regions_outside_and_closed_readers_are_errors(tmp_path, rgb):
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, rgb, tile=(64, 64))
    reader = open_capture(path)
    for region in [(0, 0, 302, 10), (-1, 0, 10, 10), (5, 5, 5, 10), (0, 10, 10, 5)]:
        with pytest.raises(ValueError, match="outside"):
            reader.read_region(*region)
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.read_region(0, 0, 10, 10)


def test_read_scaled_region_matches_cv2_area_resize(tmp_path, rgb):
    with ArrayCapture(rgb, "memory") as reader:
        small = reader.read_scaled_region(0, 0, 300, 200, 150, 100)
        assert np.array_equal(small, cv2.resize(rgb[:200, :300], (150, 100), interpolation=cv2.INTER_AREA))
        large = reader.read_scaled_region(10, 10, 20, 20, 40, 40)
        assert large.shape == (40, 40, 3)
        with pytest.raises(ValueError, match="not positive"):
            reader.read_scaled_region(0, 0, 10, 10, 0, 5)


def test_tiled_tiff_region_reads_keep_memory_bounded(tmp_path):
    width, height = 3072, 2048
    path = tmp_path / "large.tif"
    rows = np.arange(height, dtype=np.uint8)[:, None, None]
    tifffile.imwrite(path, np.broadcast_to(rows, (height, width, 3)), tile=(256, 256), compression="zlib")
    image_bytes = width * height * 3
    with TiffCapture(str(path), cache_bytes=2 * 2**20) as reader:
        tracemalloc.start()
        for y in range(0, height - 512, 500):
            for x in range(0, width - 512, 700):
                region = reader.read_region(x, y, x + 512, y + 512)
                assert region[0, 0, 0] == y % 256 and region[-1, 0, 0] == (y + 511) % 256
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < image_bytes / 4, f"peak {peak} bytes for a {image_bytes}-byte image"


@pytest.mark.skipif(importlib.util.find_spec("openslide") is not None, reason="openslide is installed here")
def test_slide_formats_without_openslide_say_what_to_install(tmp_path):
    path = tmp_path / "slide.svs"
    path.write_bytes(b"II*\x00" + b"\x00" * 64)
    with pytest.raises(ValueError, match="install openslide-python") as caught:
        open_capture(path)
    assert str(path) in str(caught.value)


@pytest.mark.skipif(importlib.util.find_spec("openslide") is None, reason="openslide-python is not installed")
def test_openslide_reads_a_tiled_tiff_slide(tmp_path):
    image = cv2.GaussianBlur(np.random.default_rng(2).integers(0, 256, (512, 768, 3), dtype=np.uint8), (0, 0), 3)
    path = tmp_path / "slide.svs"
    tifffile.imwrite(path, image, tile=(256, 256), photometric="rgb", compression="zlib")
    with open_capture(path) as reader:
        assert (reader.width, reader.height) == (768, 512)
        assert np.array_equal(reader.read_region(100, 200, 400, 300), image[200:300, 100:400])
        small = reader.read_scaled_region(0, 0, 768, 512, 192, 128)
        assert np.abs(small.astype(int) - cv2.resize(image, (192, 128), interpolation=cv2.INTER_AREA)).max() <= 1
