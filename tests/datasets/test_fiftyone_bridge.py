"""Records into a real FiftyOne dataset (embedded MongoDB in a temporary folder)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fiftyone_support import draw_smear, make_detection_set

from smearscope.datasets.fiftyone_bridge import (
    CellExtras,
    add_predictions,
    import_records,
    open_dataset,
    relative_box,
)
from smearscope.datasets.records import Domain, ImageRecord


def test_import_sets_labels_and_domain_fields_and_is_idempotent(fiftyone_db, fiftyone_name, tmp_path: Path) -> None:
    data = make_detection_set(tmp_path / "images", images_per_domain=2, seed=1)
    broken = tmp_path / "images" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a PNG header, then nothing
    broken_record = replace(data.truth[0], path=str(broken))

    first = import_records([*data.truth, broken_record], fiftyone_name)
    assert (first.added, first.updated, first.label_kind) == (6, 0, "detections")
    assert [i.path for i in first.issues] == [str(broken)]
    assert "truncated" in first.issues[0].reason

    dataset = open_dataset(fiftyone_name)
    assert len(dataset) == 6
    truth = data.truth[0]
    sample = dataset.one(fiftyone_db.ViewField("filepath") == truth.path)
    assert (sample["source"], sample["microscope"], sample["magnification"], sample["camera"]) == ("leukemiaattri", "H", "100X", "C1")
    assert (sample["domain"], sample["patient"], sample["diagnosis"], sample["split"]) == ("H_100X_C1", "4", "ALL", "test")
    assert sample["um_per_px"] is None and "test" in sample.tags
    assert (sample.metadata.width, sample.metadata.height) == (truth.width, truth.height)
    detections = sample["ground_truth"].detections
    assert [d.label for d in detections] == truth.cell_types
    assert [d["source_label"] for d in detections] == truth.source_labels
    assert [d["leukemiaattri_cell_size"] for d in detections] == truth.attributes["leukemiaattri_cell_size"]
    x1, y1, x2, y2 = truth.boxes_xyxy[0]
    expected = [x1 / truth.width, y1 / truth.height, (x2 - x1) / truth.width, (y2 - y1) / truth.height]
    assert np.allclose(detections[0].bounding_box, expected)
    assert dataset.has_sample_field("ground_truth.detections.leukemiaattri_nucleolus")
    bccd = dataset.match(fiftyone_db.ViewField("source") == "bccd")
    assert bccd.distinct("domain") == ["bccd"] and bccd.distinct("microscope") == []

    sample.tags.append("checked-by-hand")
    sample.save()
    relabelled = [replace(r, cell_types=["monocyte"] * len(r)) for r in data.truth]
    second = import_records(relabelled, fiftyone_name)
    assert (second.added, second.updated, second.issues) == (0, 6, [])
    dataset.reload()
    assert len(dataset) == 6
    assert dataset.count("ground_truth.detections") == sum(len(r) for r in data.truth)
    assert dataset.distinct("ground_truth.detections.label") == ["monocyte"]
    assert "checked-by-hand" in dataset.one(fiftyone_db.ViewField("filepath") == truth.path).tags


def test_add_predictions_carries_scores_attributes_and_extras(fiftyone_db, fiftyone_name, tmp_path: Path) -> None:
    data = make_detection_set(tmp_path, images_per_domain=1, seed=2)
    import_records(data.truth, fiftyone_name)
    outsider = replace(data.predictions[0], path=str(tmp_path / "not-imported.png"))
    summary = add_predictions(fiftyone_name, [*data.predictions, outsider], extras=[*data.extras, data.extras[0]])
    assert summary.updated == 3 and summary.label_kind == "detections"
    assert len(summary.issues) == 1 and "not in FiftyOne dataset" in summary.issues[0].reason

    dataset = open_dataset(fiftyone_name)
    prediction, extras = data.predictions[1], data.extras[1]
    detections = dataset.one(fiftyone_db.ViewField("filepath") == prediction.path)["predictions"].detections
    assert [d.label for d in detections] == prediction.cell_types
    assert np.allclose([d.confidence for d in detections], prediction.scores)
    assert [d["leukemiaattri_nucleolus"] for d in detections] == prediction.attributes["leukemiaattri_nucleolus"]
    assert [d["review"] for d in detections] == [e.review for e in extras]
    assert [d["rationale"] for d in detections] == [e.rationale for e in extras]
    assert [d["leukemiaattri_cell_size_prob"] for d in detections] == [0.8] * len(extras)
    assert np.allclose([d["type_prob"] for d in detections], [e.type_prob for e in extras])
    assert np.allclose(detections[0].bounding_box, relative_box(prediction, 0))

    again = add_predictions(dataset, data.predictions)
    assert again.updated == 3
    assert dataset.count("predictions.detections") == sum(len(p) for p in data.predictions)
    with pytest.raises(ValueError, match="extras lists"):
        add_predictions(dataset, data.predictions, extras=data.extras[:1])


def test_single_cell_sets_become_classifications(fiftyone_db, fiftyone_name, tmp_path: Path) -> None:
    records = []
    for i, cell_type in enumerate(["lymphoblast", "hematogone"]):
        path = tmp_path / f"cell{i}.png"
        draw_smear(path, np.array([[20.0, 20.0, 60.0, 60.0]]), seed=i)
        records.append(ImageRecord(path=str(path), width=120, height=96, domain=Domain("cnmc", patient=f"H{i}", split="train"),
                                   boxes_xyxy=[[0, 0, 120, 96]], cell_types=[cell_type], source_labels=[str(i)],
                                   info={"fold": i}))
    summary = import_records(records, fiftyone_name)
    assert summary.label_kind == "classification" and summary.added == 2
    dataset = open_dataset(fiftyone_name)
    sample = dataset.one(fiftyone_db.ViewField("filepath") == records[1].path)
    assert isinstance(sample["ground_truth"], fiftyone_db.Classification)
    assert (sample["ground_truth"].label, sample["ground_truth"]["source_label"]) == ("hematogone", "1")
    assert (sample["patient"], sample["source_info"]) == ("H1", {"fold": 1})

    predictions = [replace(r, cell_types=["lymphoblast"], scores=[0.9]) for r in records]
    extras = [[CellExtras(type_prob=0.9, review=True, rationale="large, prominent nucleolus")] for _ in records]
    assert add_predictions(dataset, predictions, extras=extras).label_kind == "classification"
    predicted = dataset.one(fiftyone_db.ViewField("filepath") == records[1].path)["predictions"]
    assert (predicted.label, predicted.confidence, predicted["review"]) == ("lymphoblast", 0.9, True)

    two_cells = replace(predictions[0], boxes_xyxy=[[0, 0, 50, 50], [60, 40, 110, 90]], cell_types=["lymphoblast"] * 2,
                        source_labels=["lymphoblast"] * 2, scores=[0.8, 0.7])
    skipped = add_predictions(dataset, [two_cells])
    assert skipped.updated == 0 and "2 cells cannot be one Classification" in skipped.issues[0].reason

    detection_record = replace(records[0], boxes_xyxy=[[10, 10, 50, 50]])
    with pytest.raises(ValueError, match="already holds classification"):
        import_records([detection_record], fiftyone_name, label_kind="detections")
