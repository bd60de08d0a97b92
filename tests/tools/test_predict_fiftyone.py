"""``smearscope predict`` then ``evaluate`` on a phantom dataset in FiftyOne, with the bundled models."""

from __future__ import annotations

import json

from smearscope.datasets.fiftyone_bridge import open_dataset
from smearscope.tools.cli import main


def test_predict_then_evaluate_per_domain(fiftyone_db, fiftyone_name, tmp_path, capsys) -> None:
    assert main(["synth", "--out", str(tmp_path / "synth"), "--fields", "2", "--domains", "H_100X_C1,L_40X_C2",
                 "--size", "320", "--seed", "5", "--test-fraction", "0"]) == 0
    assert main(["import", "leukemiaattri", str(tmp_path / "synth"), "--name", fiftyone_name]) == 0
    capsys.readouterr()
    assert main(["predict", "--dataset", fiftyone_name, "--work", str(tmp_path / "work")]) == 0
    assert "4 images predicted into 'predictions'" in capsys.readouterr().out
    dataset = open_dataset(fiftyone_name)
    predictions = [d for s in dataset for d in (s["predictions"].detections if s["predictions"] else [])]
    assert predictions, "no cell predicted on four phantom fields"
    assert all(d["rationale"] and 0.0 <= d["type_prob"] <= 1.0 for d in predictions)
    assert main(["evaluate", "--dataset", fiftyone_name, "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    text = json.dumps(report)
    assert "H_100X_C1" in text and "L_40X_C2" in text
    assert (tmp_path / "report" / "report.html").is_file()
