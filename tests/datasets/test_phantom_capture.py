"""Large phantom captures: chunked rendering, files on disk, ground truth like the field renderer."""

from __future__ import annotations

import numpy as np
import pytest

from smearscope.datasets.phantom import centred_view, render_capture, save_capture, view_truth
from smearscope.datasets.phantom.capture import _capture, iter_strips


def test_chunked_rendering_gives_the_pixels_of_one_piece():
    slide, view = _capture(5, 400, 272, "40X", "L", "C2", None, None)
    whole = np.concatenate([s for _, s in iter_strips(slide, view, chunk=1024)])
    chunks = np.concatenate([s for _, s in iter_strips(slide, view, chunk=96)])
    assert whole.shape == (272, 400, 3)
    assert np.array_equal(whole, chunks)


def test_capture_3000x2000_has_ground_truth_consistent_with_fields(tmp_path):
    from smearscope.datasets.formats.coco import load_coco
    from smearscope.datasets.io import read_image

    image_path, json_path = save_capture(tmp_path / "cap.png", 21, 3000, 2000, "40X", "H", "C1", diagnosis="CML")
    image = read_image(image_path)
    assert image.shape == (2000, 3000, 3)
    loaded = load_coco(json_path)
    assert loaded.issues == []
    (record,) = loaded.records
    assert len(record) > 20
    slide, view = _capture(21, 3000, 2000, "40X", "H", "C1", "CML", None)
    truth = view_truth(slide, view, str(image_path))
    assert np.abs(record.boxes_xyxy - truth.boxes_xyxy).max() < 0.01
    assert record.source_labels == truth.source_labels
    assert record.attributes == truth.attributes
    # Every cell seen in a 640 px field centred on it has the capture's class, attributes and box.
    for i in range(0, len(truth), max(1, len(truth) // 5)):
        centre = truth.boxes_xyxy[i].reshape(2, 2).mean(axis=0) * view.px
        field = centred_view(slide, view.domain, 640, center_um=(float(centre[0]), float(centre[1])))
        field_truth = view_truth(slide, field, "field.png")
        offset = (np.array(field.origin_um) - np.array(view.origin_um)) / view.px
        j = int(np.argmin(np.abs(field_truth.boxes_xyxy + np.tile(offset, 2) - truth.boxes_xyxy[i]).max(axis=1)))
        if truth.boxes_xyxy[i].min() > 0 and truth.boxes_xyxy[i, 2] < 3000 and truth.boxes_xyxy[i, 3] < 2000:
            assert np.abs(field_truth.boxes_xyxy[j] + np.tile(offset, 2) - truth.boxes_xyxy[i]).max() < 1e-6
            assert field_truth.source_labels[j] == truth.source_labels[i]
    # The cells are where the boxes say: darker than the background inside each box.
    background = np.median(image.mean(axis=2))
    for x0, y0, x1, y1 in truth.boxes_xyxy[:10].astype(int):
        assert image[y0:y1 + 1, x0:x1 + 1].mean() < background - 10


def test_tiff_capture_is_streamed_and_equals_the_in_memory_one(tmp_path):
    import tifffile

    path, json_path = save_capture(tmp_path / "cap.tif", 3, 600, 520, "10X", "L", "C1")
    in_memory, record = render_capture(3, 600, 520, "10X", "L", "C1")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.is_tiled and page.tilewidth == 256
        assert np.array_equal(page.asarray(), in_memory)
    assert json_path.is_file() and len(record) > 0
    assert render_capture(3, 600, 520, "10X", "L", "C1")[0].tobytes() == in_memory.tobytes()


@pytest.mark.parametrize("name, size, message", [
    ("cap.jpg", (64, 64), "must be written as .png, .tif or .tiff"),
    ("cap.png", (8, 64), "too small"),
    ("cap.png", (9000, 9000), "too large for PNG"),
])
def test_bad_capture_requests(tmp_path, name, size, message):
    with pytest.raises(ValueError, match=message):
        save_capture(tmp_path / name, 0, *size)
    assert not any(tmp_path.iterdir())
