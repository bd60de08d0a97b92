"""Per-domain evaluation on real FiftyOne datasets, checked by hand and against pycocotools
run independently on the generated records."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from fiftyone_support import draw_smear, make_detection_set
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from smearscope.datasets.eval_report import write_report
from smearscope.datasets.evaluation import evaluate_dataset, load_report
from smearscope.datasets.fiftyone_bridge import add_predictions, import_records, open_dataset
from smearscope.datasets.fiftyone_views import save_review_views
from smearscope.datasets.records import Domain, ImageRecord

EXACT = 1e-9


def test_hand_countable_case(fiftyone_db, fiftyone_name, tmp_path: Path) -> None:
    """Two true cells, three predictions: an exact hit (0.9), a miss (0.8), a hit of IoU 0.72 (0.7).

    At IoU 0.50-0.70 both cells are found: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1, so
    the 101-point AP is (51 * 1 + 50 * 2/3) / 101 = 253/303. At IoU 0.75-0.95 the third
    prediction fails: AP = 51/101. mAP50-95 = (5 * 253/303 + 5 * 153/303) / 10 = 203/303.
    """
    path = tmp_path / "tiny.png"
    truth_boxes = [[0, 0, 10, 10], [20, 20, 30, 30]]
    draw_smear(path, np.array(truth_boxes, dtype=float), seed=0)
    domain = Domain("leukemiaattri", "H", "100X", "C1", split="test")
    truth = ImageRecord(path=str(path), width=120, height=96, domain=domain, boxes_xyxy=truth_boxes,
                        cell_types=["lymphocyte", "lymphocyte"], attributes={"leukemiaattri_cell_size": ["large", "small"]})
    prediction = replace(truth, boxes_xyxy=[[0, 0, 10, 10], [40, 40, 50, 50], [20, 20, 30, 27.2]],
                         cell_types=["lymphocyte"] * 3, source_labels=["lymphocyte"] * 3, scores=[0.9, 0.8, 0.7],
                         attributes={"leukemiaattri_cell_size": ["large", "small", "large"]})
    import_records([truth], fiftyone_name)
    add_predictions(fiftyone_name, [prediction])

    report = evaluate_dataset(fiftyone_name, eval_key="tiny")
    overall = report.group("all")
    assert overall.map50 == pytest.approx(253 / 303, abs=EXACT)
    assert overall.map50_95 == pytest.approx(203 / 303, abs=EXACT)
    assert overall.coco_map50 == pytest.approx(253 / 303, abs=EXACT)
    assert overall.coco_map50_95 == pytest.approx(203 / 303, abs=EXACT)
    assert overall.agnostic_map50 == pytest.approx(253 / 303, abs=EXACT)
    assert (overall.matched, overall.missed, overall.spurious) == (2, 0, 1)
    assert overall.type_accuracy == 1.0
    [size] = overall.attributes
    assert (size.cells, size.accuracy, size.macro_f1) == (2, 0.5, pytest.approx(1 / 3))
    assert report.group("domain", "H_100X_C1").map50 == pytest.approx(253 / 303, abs=EXACT)
    assert report.coco_agrees

    dataset = open_dataset(fiftyone_name)
    predicted = dataset.first()["predictions"].detections
    assert [d["tiny"] for d in predicted] == ["tp", "fp", "tp"]
    assert predicted[2]["tiny_id"] == dataset.first()["ground_truth"].detections[1].id
    assert predicted[2]["tiny_attrs_wrong"] == ["leukemiaattri_cell_size"]
    assert predicted[0]["tiny_attrs_wrong"] == []

    none_kept = evaluate_dataset(fiftyone_name, eval_key="monocytes", classes=["monocyte"]).group("all")
    assert (none_kept.gt_cells, none_kept.pred_cells, none_kept.map50, none_kept.coco_map50) == (0, 0, None, None)


def _pycocotools(truth: list[ImageRecord], predictions: list[ImageRecord], agnostic: bool) -> tuple[float, float]:
    """mAP50 and mAP50-95 straight from the records (xyxy pixels), independent of FiftyOne."""
    names = sorted({t for r in truth + predictions for t in r.cell_types})
    category = {n: i + 1 for i, n in enumerate(names)}
    images, annotations, results = [], [], []
    for image_id, (gt, pred) in enumerate(zip(truth, predictions), start=1):
        images.append({"id": image_id, "width": gt.width, "height": gt.height})
        for box, label in zip(gt.boxes_xyxy, gt.cell_types):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category[label],
                                "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
        for box, label, score in zip(pred.boxes_xyxy, pred.cell_types, pred.scores):
            results.append({"image_id": image_id, "category_id": category[label], "score": float(score),
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": annotations,
                        "categories": [{"id": i, "name": n} for n, i in category.items()]}
        coco.createIndex()
        evaluator = COCOeval(coco, coco.loadRes(results), "bbox")
        evaluator.params.useCats = 0 if agnostic else 1
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[1], evaluator.stats[0]  # AP@0.5, AP@0.5:0.95 (area all, maxDets 100)


def test_per_domain_map_matches_pycocotools_on_the_records(fiftyone_db, fiftyone_name, tmp_path: Path) -> None:
    data = make_detection_set(tmp_path, images_per_domain=4, seed=3)
    import_records(data.truth, fiftyone_name)
    add_predictions(fiftyone_name, data.predictions, extras=data.extras)
    report = evaluate_dataset(fiftyone_name, "predictions", "ground_truth", "ev")

    groups = {
        ("all", None): lambda r: True,
        ("domain", "H_100X_C1"): lambda r: r.domain.name == "H_100X_C1",
        ("domain", "L_40X_C2"): lambda r: r.domain.name == "L_40X_C2",
        ("source", "bccd"): lambda r: r.domain.source == "bccd",
        ("source", "leukemiaattri"): lambda r: r.domain.source == "leukemiaattri",
    }
    assert [(g.kind, None if g.kind == "all" else g.value) for g in report.groups] == list(groups)
    for (kind, value), keep in groups.items():
        group = report.group(kind, value)
        chosen = [i for i, r in enumerate(data.truth) if keep(r)]
        truth = [data.truth[i] for i in chosen]
        predictions = [data.predictions[i] for i in chosen]
        assert group.images == len(truth)
        assert group.gt_cells == sum(len(r) for r in truth)
        assert group.pred_cells == sum(len(r) for r in predictions)
        map50, map50_95 = _pycocotools(truth, predictions, agnostic=False)
        assert group.map50 == pytest.approx(map50, abs=EXACT), group.name
        assert group.map50_95 == pytest.approx(map50_95, abs=EXACT), group.name
        map50, map50_95 = _pycocotools(truth, predictions, agnostic=True)
        assert group.agnostic_map50 == pytest.approx(map50, abs=EXACT), group.name
        assert group.agnostic_map50_95 == pytest.approx(map50_95, abs=EXACT), group.name
        assert 0.0 < group.agnostic_map50 <= 1.0
    assert report.coco_agrees and report.max_coco_difference < 1e-12
    assert report.group("source", "bccd").type_accuracy is None  # its ground truth says only "wbc"
    assert report.group("source", "bccd").map50 == 0.0
    assert 0.5 < report.group("domain", "L_40X_C2").type_accuracy < 1.0

    confusion = np.array(report.confusion)
    labels = report.confusion_labels
    overall = report.group("all")
    assert confusion[:-1, :-1].sum() == overall.matched
    assert confusion[:-1, -1].sum() == overall.missed and confusion[-1, :-1].sum() == overall.spurious
    assert overall.matched + overall.missed == overall.gt_cells
    assert labels[-1] == "(none)" and "wbc" in labels

    assert load_report(fiftyone_name, "ev").to_dict() == report.to_dict()
    with pytest.raises(ValueError, match="no smearscope evaluation 'other'"):
        load_report(fiftyone_name, "other")

    paths = write_report(report, tmp_path / "report")
    html = paths["html"].read_text()
    assert html.count("data:image/png;base64,") == 3
    for name in ("domain H_100X_C1", "domain L_40X_C2", "source bccd", "agree"):
        assert name in html
    markdown = paths["markdown"].read_text()
    assert "| domain L_40X_C2 | 4 |" in markdown and "issue 3971" in markdown
    for name in ("pr_curves", "type_confusion", "attribute_accuracy"):
        image = cv2.imread(str(paths[name]))
        assert image is not None and image.shape[0] > 200 and image.std() > 5

    dataset = open_dataset(fiftyone_name)
    views = save_review_views(dataset, eval_key="ev")
    assert "ev L_40X_C2 false negatives" in views and "predictions flagged for review" in views
    false_negatives = dataset.load_saved_view("ev L_40X_C2 false negatives")
    F = fiftyone_db.ViewField
    expected_fn = dataset.match(F("domain") == "L_40X_C2").count_values("ground_truth.detections.ev").get("fn", 0)
    assert false_negatives.count("ground_truth.detections") == expected_fn > 0
    flagged = dataset.load_saved_view("predictions flagged for review")
    assert flagged.count("predictions.detections") == sum(e.review for cell in data.extras for e in cell) > 0
    disagreements = dataset.load_saved_view("ev attribute disagreements")
    assert disagreements.count("predictions.detections") > 0
    assert all(d for d in disagreements.values("predictions.detections.ev_attrs_wrong", unwind=True))


def test_evaluate_rejects_what_it_cannot_score(fiftyone_db, fiftyone_name, tmp_path: Path) -> None:
    data = make_detection_set(tmp_path, images_per_domain=1, seed=4)
    import_records(data.truth, fiftyone_name)
    with pytest.raises(ValueError, match="has no field 'predictions'"):
        evaluate_dataset(fiftyone_name)
    add_predictions(fiftyone_name, data.predictions)
    with pytest.raises(ValueError, match="plain identifier"):
        evaluate_dataset(fiftyone_name, eval_key="my eval")
    with pytest.raises(ValueError, match="not found"):
        evaluate_dataset(fiftyone_name + "-missing")


def test_single_cell_sets_get_type_and_attribute_accuracy_without_map(fiftyone_db, fiftyone_name, tmp_path: Path) -> None:
    truth = []
    cells = [("cnmc", "lymphoblast", "big"), ("cnmc", "hematogone", "small"), ("pbc", "eosinophil", "big"), ("pbc", "basophil", "small")]
    for i, (source, cell_type, size) in enumerate(cells):
        path = tmp_path / f"cell{i}.png"
        draw_smear(path, np.array([[30.0, 20.0, 90.0, 80.0]]), seed=i)
        truth.append(ImageRecord(path=str(path), width=120, height=96, domain=Domain(source), boxes_xyxy=[[0, 0, 120, 96]],
                                 cell_types=[cell_type], attributes={"wbcatt_cell_size": [size]}))
    guessed = [("lymphoblast", "big"), ("lymphoblast", "small"), ("eosinophil", "small"), ("basophil", "small")]
    predictions = [replace(r, cell_types=[t], source_labels=[t], attributes={"wbcatt_cell_size": [s]}, scores=[0.9])
                   for r, (t, s) in zip(truth, guessed)]
    import_records(truth, fiftyone_name)
    add_predictions(fiftyone_name, predictions)

    report = evaluate_dataset(fiftyone_name)
    overall, cnmc, pbc = report.group("all"), report.group("source", "cnmc"), report.group("source", "pbc")
    assert (overall.matched, overall.missed, overall.spurious, overall.type_accuracy) == (4, 0, 0, 0.75)
    assert (cnmc.type_accuracy, pbc.type_accuracy) == (0.5, 1.0)
    assert overall.map50 is None and overall.coco_map50 is None and report.coco_agrees
    [size] = pbc.attributes
    assert (size.name, size.cells, size.accuracy, size.macro_f1) == ("wbcatt_cell_size", 2, 0.5, pytest.approx(1 / 3))

    dataset = open_dataset(fiftyone_name)
    assert sorted(dataset.values("eval")) == [False, True, True, True]
    views = save_review_views(dataset)
    assert dataset.load_saved_view("eval cnmc misclassified").values("filepath") == [truth[1].path]
    assert "eval attribute disagreements" in views
    assert dataset.load_saved_view("eval attribute disagreements").values("filepath") == [truth[2].path]
    write_report(report, tmp_path / "report")
    assert "n/a" in (tmp_path / "report" / "report.md").read_text()
