"""The model-free parts of YOLO inference: canvas, decoding, NMS and weights metadata."""

from __future__ import annotations

import json

import numpy as np
import pytest

from smearscope.detect.yolo_meta import (
    DetectorMetadata,
    metadata_path,
    read_detector_metadata,
    save_detector_metadata,
)
from smearscope.detect.yolo_predict import PAD_VALUE, decode_yolo_output, load_predictor, nms, to_canvas


def test_small_tiles_are_padded_never_enlarged_and_large_tiles_shrink_to_fit():
    tile = np.full((50, 70, 3), 9, dtype=np.uint8)
    canvas, gain = to_canvas(tile, 96)
    assert gain == 1.0 and canvas.shape == (96, 96, 3)
    assert np.all(canvas[:50, :70] == 9) and np.all(canvas[50:] == PAD_VALUE) and np.all(canvas[:, 70:] == PAD_VALUE)
    canvas, gain = to_canvas(np.zeros((192, 96, 3), dtype=np.uint8), 96)
    assert gain == 0.5 and np.all(canvas[:, :48] == 0) and np.all(canvas[:, 48:] == PAD_VALUE)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32)])
def test_tiles_that_are_not_rgb_uint8_are_refused(bad):
    with pytest.raises(ValueError, match="expected an RGB uint8 array"):
        to_canvas(bad, 64)


def test_nms_matches_torchvision_on_random_boxes():
    import torch
    import torchvision

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 200, (300, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (300, 2))], axis=1)
    scores = rng.uniform(0, 1, 300)
    expected = torchvision.ops.nms(torch.tensor(boxes), torch.tensor(scores), 0.5).numpy()
    assert np.array_equal(nms(boxes, scores, 0.5), expected)


def test_decoding_matches_ultralytics_postprocessing_on_the_same_raw_output():
    import torch

    from smearscope.detect.yolo_env import import_yolo

    import_yolo()
    from ultralytics.utils.nms import non_max_suppression

    rng = np.random.default_rng(5)
    anchors, classes = 600, 2
    centres = rng.uniform(0, 320, (anchors, 2))
    sizes = rng.uniform(8, 80, (anchors, 2))
    raw = np.concatenate([centres, sizes, rng.uniform(0, 1, (anchors, classes)) ** 4], axis=1).T.astype(np.float32)
    ours = decode_yolo_output(raw, conf=0.25, iou=0.7, max_det=300)
    theirs = non_max_suppression(torch.from_numpy(raw[None]), conf_thres=0.25, iou_thres=0.7, max_det=300)[0].numpy()
    assert len(ours[0]) == len(theirs) > 10
    assert np.allclose(ours[0], theirs[:, :4], atol=1e-3)
    assert np.allclose(ours[1], theirs[:, 4], atol=1e-6)
    assert np.array_equal(ours[2], theirs[:, 5].astype(np.int64))


def test_metadata_sidecar_round_trip_and_clear_errors(tmp_path):
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"weights")
    metadata = DetectorMetadata(["wbc"], 320, 0.3125, sources=["bccd"])
    assert save_detector_metadata(metadata, weights) == metadata_path(weights) == tmp_path / "best.pt.json"
    assert read_detector_metadata(weights) == metadata
    metadata_path(weights).write_text(json.dumps({"class_names": ["wbc"], "imgsz": 320}))
    with pytest.raises(ValueError, match="best.pt.json: detector metadata needs class_names, imgsz and um_per_px"):
        read_detector_metadata(weights)
    metadata_path(weights).unlink()
    with pytest.raises(ValueError, match=r"best.pt: no detector metadata \(expected best.pt.json beside it\)"):
        read_detector_metadata(weights)
    with pytest.raises(ValueError, match="must be positive"):
        DetectorMetadata(["wbc"], 320, 0.0)


def test_load_predictor_refuses_bad_arguments_before_loading_anything(tmp_path):
    with pytest.raises(ValueError, match="weights file not found"):
        load_predictor(tmp_path / "missing.pt")
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    save_detector_metadata(DetectorMetadata(["wbc"], 320, 0.3125), weights)
    with pytest.raises(ValueError, match="backend: 'tensorrt' is not one of torch, onnx"):
        load_predictor(weights, backend="tensorrt")
    with pytest.raises(ValueError, match="imgsz: must be a positive multiple of 32"):
        load_predictor(weights, imgsz=100)
    with pytest.raises(ValueError, match="not a usable ONNX model"):
        onnx_file = tmp_path / "w.onnx"
        onnx_file.write_bytes(b"not onnx")
        save_detector_metadata(DetectorMetadata(["wbc"], 320, 0.3125), onnx_file)
        load_predictor(onnx_file, backend="onnx")
