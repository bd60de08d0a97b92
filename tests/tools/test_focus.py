"""The focus measure reads sharp captures as sharp at every magnification, and blur as blur."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from smearscope.attributes.model import load_checkpoint
from smearscope.datasets.phantom import render_capture
from smearscope.detect.capture import ArrayCapture
from smearscope.tools.analyze import AnalyzeOptions, default_weights, read_cell_crops, sharpness

FOCUS_THRESHOLD = AnalyzeOptions().focus_threshold


@pytest.fixture(scope="module")
def field():
    """A sharp 100X phantom field (0.125 um/px) crowded with white cells, and their boxes."""
    image, truth = render_capture(2, width=1024, height=768, magnification="100X", microscope="H", camera="C1",
                                  wbc_per_mm2=3000)
    boxes = truth.boxes_xyxy[[t != "artifact" for t in truth.cell_types]]
    assert len(boxes) >= 5
    return image, boxes, truth.domain.um_per_px


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(default_weights()[1])


def focus(image: np.ndarray, boxes: np.ndarray, um_per_px: float, model) -> float:
    crops, _, _ = read_cell_crops(ArrayCapture(image), boxes, model, um_per_px)
    return float(np.median(sharpness(crops, um_per_px, model.config.crop_um)))


@pytest.mark.parametrize("um_per_px", [None, 0.3125, 1.25], ids=["100X", "40X", "10X"])
def test_a_sharp_field_reads_sharp_and_a_defocused_one_blurred_at_each_pixel_size(field, model, um_per_px):
    image, boxes, native = field
    if um_per_px is not None:  # the same field through a lower magnification: fewer, larger pixels
        factor = native / um_per_px
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        boxes = boxes * factor
    else:
        um_per_px = native
    defocus_um = 6 * um_per_px  # a blur of a few pixels at any magnification
    blurred = cv2.GaussianBlur(image, (0, 0), defocus_um / um_per_px)

    sharp_focus, blurred_focus = focus(image, boxes, um_per_px, model), focus(blurred, boxes, um_per_px, model)
    assert sharp_focus > FOCUS_THRESHOLD > blurred_focus, (sharp_focus, blurred_focus)


def test_enlarged_crops_are_measured_at_the_captures_own_pixel_size():
    rng = np.random.default_rng(0)
    native = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    enlarged = cv2.resize(native, (128, 128), interpolation=cv2.INTER_LINEAR)[None]
    at_native = sharpness(enlarged, um_per_px=22.0 / 32, crop_um=22.0)[0]
    as_enlarged = sharpness(enlarged, um_per_px=22.0 / 128, crop_um=22.0)[0]
    assert at_native > 10 * as_enlarged
