"""The Detections record: validation, selection and conversion to an ImageRecord."""

from __future__ import annotations

import numpy as np
import pytest

from smearscope.datasets.records import Domain
from smearscope.detect.detections import Detections


def test_fields_are_normalised():
    found = Detections([[1, 2, 3, 4]], [0.5], [2.0])
    assert found.xyxy.dtype == np.float64 and found.xyxy.shape == (1, 4)
    assert found.class_ids.dtype == np.int64 and found.class_ids.tolist() == [2]
    assert len(Detections()) == 0 and Detections().xyxy.shape == (0, 4)


@pytest.mark.parametrize(
    "xyxy,scores,class_ids,field",
    [
        ([[0, 0, 1, 1]], [0.5, 0.6], [0], "scores"),
        ([[0, 0, 1, 1]], [0.5], [0, 1], "class_ids"),
        ([[0, 0, 1]], [0.5], [0], "xyxy"),
        ([[0, 0, 1, np.nan]], [0.5], [0], "xyxy"),
        ([[0, 0, 1, 1]], [0.5], [0.5], "class_ids"),
    ],
)
def test_inconsistent_fields_raise_naming_the_field(xyxy, scores, class_ids, field):
    with pytest.raises(ValueError, match=f"Detections.{field}"):
        Detections(xyxy, scores, class_ids)


def test_select_and_concatenate():
    found = Detections([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]], [0.1, 0.2, 0.3], [0, 1, 2])
    assert found.select([2, 0]).scores.tolist() == [0.3, 0.1]
    assert found.select(np.array([True, False, True])).class_ids.tolist() == [0, 2]
    both = Detections.concatenate([found.select([0]), found.select([2])])
    assert both.xyxy.tolist() == [[0, 0, 1, 1], [2, 2, 3, 3]]
    assert len(Detections.concatenate([])) == 0


def test_to_record_names_classes():
    found = Detections([[10, 10, 50, 60], [5, 5, 9, 9]], [0.9, 0.4], [0, 1])
    record = found.to_record("a.png", 100, 80, Domain(source="capture"), ["wbc", "platelet"])
    assert record.cell_types == ["wbc", "platelet"]
    assert record.scores.tolist() == [0.9, 0.4]
    assert record.boxes_xyxy.tolist() == found.xyxy.tolist()
    by_id = found.to_record("a.png", 100, 80, Domain(source="capture"), {0: "lymphocyte", 1: "monocyte"})
    assert by_id.cell_types == ["lymphocyte", "monocyte"]


@pytest.mark.parametrize("class_ids,names", [([0, 3], ["wbc"]), ([-1], ["wbc", "rbc"]), ([2], {0: "wbc"})])
def test_to_record_rejects_unnamed_class_ids(class_ids, names):
    found = Detections([[0, 0, 1, 1]] * len(class_ids), [0.5] * len(class_ids), class_ids)
    with pytest.raises(ValueError, match="a.png: class id"):
        found.to_record("a.png", 10, 10, Domain(source="capture"), names)


def test_to_record_checks_boxes_against_the_image():
    found = Detections([[0, 0, 200, 10]], [0.5], [0])
    with pytest.raises(ValueError, match="outside"):
        found.to_record("a.png", 100, 100, Domain(source="capture"), ["wbc"])
