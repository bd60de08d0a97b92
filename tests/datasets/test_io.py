"""Checked image reads and atomic writes."""

import json

import cv2
import numpy as np
import pytest
import tifffile

from smearscope.datasets.io import read_image, read_json, write_json_atomic, write_text_atomic


def test_reads_rgb_from_colour_grey_rgba_and_16_bit(tmp_path):
    bgr = np.zeros((8, 10, 3), np.uint8)
    bgr[..., 2] = 200  # red in BGR
    cv2.imwrite(str(tmp_path / "c.png"), bgr)
    assert read_image(tmp_path / "c.png")[0, 0].tolist() == [200, 0, 0]
    cv2.imwrite(str(tmp_path / "g.png"), np.full((8, 10), 90, np.uint8))
    assert read_image(tmp_path / "g.png").shape == (8, 10, 3)
    rgba = np.dstack([bgr, np.full((8, 10), 255, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    assert read_image(tmp_path / "a.png")[0, 0].tolist() == [200, 0, 0]
    tifffile.imwrite(tmp_path / "w.tif", np.full((8, 10, 3), 65535, np.uint16))
    img = read_image(tmp_path / "w.tif")
    assert img.dtype == np.uint8 and img.max() == 255


@pytest.mark.parametrize("name, payload, message", [
    ("empty.png", b"", "empty file"),
    ("text.jpg", b"not an image at all", "not a readable image"),
])
def test_bad_files_give_one_line_errors(tmp_path, name, payload, message):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(ValueError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: {message}"


def test_truncated_jpeg_is_rejected(tmp_path):
    ok, data = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data.tobytes()[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.jpg: truncated image file"):
        read_image(path)


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    write_json_atomic(tmp_path / "d" / "x.json", {"a": np.int64(3), "b": np.arange(2)})
    assert read_json(tmp_path / "d" / "x.json") == {"a": 3, "b": [0, 1]}
    write_text_atomic(tmp_path / "d" / "x.json", "{")
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["x.json"]
    with pytest.raises(ValueError, match="x.json: malformed JSON"):
        read_json(tmp_path / "d" / "x.json")


def test_json_is_strict_with_numpy_and_non_finite_values(tmp_path):
    data = {"ap": float("nan"), "ratio": np.float32("inf"), "n": np.int32(4), "xs": np.array([1.5, -np.inf]),
            "nested": [{"v": np.float64("nan")}, (1, "a", None, True)]}
    path = write_json_atomic(tmp_path / "m.json", data)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"ap": None, "ratio": None, "n": 4, "xs": [1.5, None],
                                "nested": [{"v": None}, [1, "a", None, True]]}
    with pytest.raises(TypeError, match="cannot write object as JSON"):
        write_json_atomic(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()
