"""The cell stage run over the detections in chunks gives the same results as in one go."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from smearscope.attributes.explain import explain_cells, trained_heads
from smearscope.attributes.model import load_checkpoint
from smearscope.attributes.predict import predict_crops
from smearscope.datasets.phantom import render_capture
from smearscope.detect.capture import ArrayCapture
from smearscope.detect.detections import Detections
from smearscope.tools.analyze import (
    AnalyzeOptions, call_cells, default_weights, make_capture_job, read_cell_crops, sharpness,
)
from smearscope.tools.report_html import gallery_cells, thumbnail_jpeg

SEED = 4


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """A small synthetic capture crowded with white cells, saved as PNG, with its ground truth."""
    image, truth = render_capture(SEED, width=768, height=512, magnification="40X", microscope="H", camera="C1",
                                  wbc_per_mm2=1500)
    path = tmp_path_factory.mktemp("chunks") / "smear.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path, image, truth


def _gallery(report: str) -> str:
    """The report's cell gallery (the rest holds the analysis time)."""
    return report.split("<h2>Cells</h2>", 1)[1]


def test_outputs_do_not_depend_on_the_chunk_size(capture, tmp_path):
    path, _, truth = capture
    options = AnalyzeOptions(um_per_px=truth.domain.um_per_px)
    outputs = {}
    for chunk_size in (1, 3, 100_000):
        folder = tmp_path / f"chunk{chunk_size}"
        folder.mkdir()
        result = make_capture_job(options, chunk_size=chunk_size)(path, folder)
        result.pop("seconds")
        outputs[chunk_size] = {
            "result": json.dumps(result),
            "report": _gallery((folder / "report.html").read_text()),
            **{name: (folder / name).read_bytes() for name in ("cells.csv", "cells.coco.json", "cells.geojson")},
        }
    cells = json.loads(outputs[1]["result"])["cells"]
    assert len(cells) >= 7, f"only {len(cells)} cells: chunks of 3 would not split the capture in three"
    assert outputs[1]["cells.csv"].count(b"\n") == len(cells) + 1
    assert outputs[1] == outputs[3] == outputs[100_000]


def test_chunked_cell_stage_matches_the_whole_capture_at_once(capture):
    _, image, truth = capture
    model = load_checkpoint(default_weights()[1])
    heads = trained_heads(model.config.heads, model.config.trained_heads)
    um_per_px = truth.domain.um_per_px
    boxes = np.insert(truth.boxes_xyxy, 5, [-200.0, -200.0, -150.0, -150.0], axis=0)  # one box off the capture
    detections = Detections(boxes, np.linspace(0.9, 0.5, len(boxes)), np.zeros(len(boxes), np.int64))
    reader = ArrayCapture(image)
    crops, kept, rejected = read_cell_crops(reader, boxes, model, um_per_px)
    assert [i for i, _ in rejected] == [5] and len(kept) >= 20
    explanations = explain_cells(predict_crops(model, crops, batch_size=4), heads)
    for chunk_size in (1, 3, 5, 6, 100_000):
        calls = call_cells(reader, detections, model, heads, um_per_px, chunk_size, predict_batch=4, gallery_per_type=2)
        assert [c.explanation for c in calls.cells] == explanations, f"chunk size {chunk_size}"
        assert [c.box_xyxy for c in calls.cells] == [tuple(boxes[i]) for i in kept]
        assert [c.detection_score for c in calls.cells] == [detections.scores[i] for i in kept]
        assert calls.focus == float(np.median(sharpness(crops, um_per_px, model.config.crop_um)))
        shown = gallery_cells(calls.cells, per_type=2)
        assert calls.thumbnails == {i: thumbnail_jpeg(crops[i]) for i in shown}


def test_chunk_size_below_one_is_refused():
    with pytest.raises(ValueError, match="chunk_size must be at least 1, got 0"):
        make_capture_job(AnalyzeOptions(um_per_px=0.3), chunk_size=0)
