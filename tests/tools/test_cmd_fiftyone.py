"""``smearscope import`` and ``smearscope evaluate`` on real FiftyOne datasets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from fiftyone_support import draw_smear, make_detection_set

from smearscope.datasets.fiftyone_bridge import add_predictions, import_records, open_dataset
from smearscope.tools.cli import main


def _pbc_layout(root: Path) -> Path:
    base = root / "PBC_dataset_normal_DIB"
    for folder, name in (("neutrophil", "SNE_1.jpg"), ("neutrophil", "BNE_2.jpg"), ("eosinophil", "EO_3.jpg")):
        draw_smear(base / folder / name, np.array([[30.0, 20.0, 90.0, 80.0]]), seed=len(name))
    (base / "basophil").mkdir()
    (base / "basophil" / "BA_4.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    return root


def test_import_single_cell_source_reports_skipped_files_and_is_idempotent(fiftyone_db, fiftyone_name, tmp_path, capsys) -> None:
    root = _pbc_layout(tmp_path)
    assert main(["import", "pbc", str(root), "--name", fiftyone_name]) == 1
    out = capsys.readouterr().out
    assert f"{fiftyone_name}.ground_truth (classification): 3 added, 0 updated" in out
    assert "segmented_neutrophil 1" in out and "band_neutrophil 1" in out and "eosinophil 1" in out
    assert "skipped or noted:" in out and "BA_4.jpg: truncated image file" in out

    assert main(["import", "pbc", str(root), "--name", fiftyone_name]) == 1
    assert "0 added, 3 updated" in capsys.readouterr().out
    dataset = open_dataset(fiftyone_name)
    assert len(dataset) == 3
    assert sorted(dataset.values("ground_truth.source_label")) == ["BNE", "EO", "SNE"]

    assert main(["import", "pbc", str(root), "--name", fiftyone_name, "--split", "train"]) == 1
    assert "pbc has no train/val/test split" in capsys.readouterr().err


def test_import_detection_source_in_yolo_layout(fiftyone_db, fiftyone_name, tmp_path, capsys) -> None:
    root = tmp_path / "txl"
    for split, boxes in (("train", [[10.0, 10.0, 40.0, 44.0], [60.0, 50.0, 70.0, 60.0]]), ("val", [[50.0, 30.0, 90.0, 70.0]])):
        draw_smear(root / "images" / split / f"field_{split}.jpg", np.array(boxes), seed=1)
        lines = []
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            lines.append(f"{i % 2} {(x1 + x2) / 240:.6f} {(y1 + y2) / 192:.6f} {(x2 - x1) / 120:.6f} {(y2 - y1) / 96:.6f}")
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split / f"field_{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("WBC\nRBC\nPlatelets\n")

    assert main(["import", "txl", str(root), "--name", fiftyone_name, "--split", "train"]) == 0
    out = capsys.readouterr().out
    assert "(detections): 1 added" in out and "wbc 1" in out and "rbc 1" in out
    sample = open_dataset(fiftyone_name).first()
    assert sample["split"] == "train" and sample["source"] == "txl"
    assert [d.label for d in sample["ground_truth"].detections] == ["wbc", "rbc"]
    x, y, w, h = sample["ground_truth"].detections[0].bounding_box
    assert (round(x * 120), round(y * 96), round(w * 120), round(h * 96)) == (10, 10, 30, 34)


def test_evaluate_command_writes_the_report(fiftyone_db, fiftyone_name, tmp_path, capsys) -> None:
    data = make_detection_set(tmp_path / "images", images_per_domain=2, seed=5)
    import_records(data.truth, fiftyone_name)
    add_predictions(fiftyone_name, data.predictions, extras=data.extras)
    out_dir = tmp_path / "report"
    assert main(["evaluate", "--dataset", fiftyone_name, "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    for group in ("all", "domain H_100X_C1", "domain L_40X_C2", "source bccd", "source leukemiaattri"):
        assert group in out
    assert "FiftyOne vs pycocotools: agree" in out
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "attribute_accuracy.png", "pr_curves.png", "report.html", "report.json", "report.md", "type_confusion.png",
    ]
    assert cv2.imread(str(out_dir / "pr_curves.png")) is not None
    assert open_dataset(fiftyone_name).has_evaluation("eval")

    assert main(["evaluate", "--dataset", fiftyone_name + "-missing", "--out", str(out_dir)]) == 1
    assert "not found" in capsys.readouterr().err
