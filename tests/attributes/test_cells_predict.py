"""Inference on the boxes of an image, and Grad-CAM heatmaps."""

from __future__ import annotations

import numpy as np
import pytest
from cell_support import draw_cell

from smearscope.attributes.model import create_model
from smearscope.attributes.predict import predict_boxes, predict_crops
from smearscope.attributes.saliency import grad_cam


def test_predict_boxes_returns_probabilities_for_usable_boxes_only():
    model = create_model("cellnet_xs", input_size=32)
    image = draw_cell(200, 60, (150, 84, 168), np.random.default_rng(0), centre=(100, 100))
    boxes = np.array([[70, 70, 130, 130], [10, 10, 10, 30], [150, 150, 260, 260]])
    probs, crops = predict_boxes(model, image, boxes, um_per_px=0.3)
    assert crops.kept.tolist() == [0, 2] and crops.rejected[0][0] == 1
    assert set(probs) == set(model.config.heads)
    for name, values in model.config.heads.items():
        assert probs[name].shape == (2, len(values))
        np.testing.assert_allclose(probs[name].sum(axis=1), 1.0, atol=1e-5)


def test_larger_cached_crops_are_centre_cropped_and_bad_ones_refused():
    model = create_model("cellnet_xs", input_size=32)
    crops = np.random.default_rng(1).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    centre = crops[:, 4:36, 4:36]
    a, b = predict_crops(model, crops), predict_crops(model, np.ascontiguousarray(centre))
    np.testing.assert_allclose(a["cell_type"], b["cell_type"], atol=1e-6)
    with pytest.raises(ValueError, match="uint8 crops"):
        predict_crops(model, crops.astype(np.float32))


def test_grad_cam_gives_a_normalised_heatmap_of_the_input_size():
    model = create_model("cellnet_xs", input_size=32)
    crop = draw_cell(32, 18, (150, 84, 168), np.random.default_rng(2))
    heatmap, target = grad_cam(model, crop)
    assert heatmap.shape == (32, 32) and heatmap.dtype == np.float32
    assert float(heatmap.min()) >= 0.0 and float(heatmap.max()) <= 1.0
    assert 0 <= target < len(model.config.heads["cell_type"])
    assert all(p.grad is None for p in model.parameters())
    attribute_map, value = grad_cam(model, crop, head="wbcatt_cell_size", class_index=1)
    assert value == 1 and attribute_map.shape == (32, 32)
    with pytest.raises(ValueError, match="unknown head"):
        grad_cam(model, crop, head="colour")
    with pytest.raises(ValueError, match="out of range"):
        grad_cam(model, crop, class_index=99)
    with pytest.raises(ValueError, match="uint8 crop of shape"):
        grad_cam(model, crop[:16])
