"""A tiny real YOLO run: dataset, training (interrupted and resumed), scores, inference, ONNX.

One training (two epochs on eight 160 px fields) runs in a fresh interpreter with every
outside connection and pip run blocked; the tests below check what it produced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from smearscope.datasets.config import to_dict
from smearscope.datasets.io import read_image
from smearscope.detect.config import load_detector_config
from smearscope.detect.yolo_meta import read_detector_metadata

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).with_name("yolo_offline_run.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """Run the guarded script once; its report plus the work folder."""
    work = tmp_path_factory.mktemp("yolo")
    report = work / "report.json"
    done = subprocess.run([sys.executable, str(SCRIPT), str(work), str(report)], capture_output=True, text=True,
                          timeout=600, env=os.environ.copy())
    if done.returncode != 0:
        pytest.fail(f"guarded run failed:\n{done.stderr[-4000:]}")
    data = json.loads(report.read_text())
    data["work"] = work
    return data


def test_no_outside_connection_or_install_is_attempted(run):
    assert run["self_check"] == ["create_connection ('192.0.2.1', 80)"]  # the guard does catch attempts
    assert run["attempts"] == [], "\n".join(run["callers"])
    assert run["pip_runs"] == []


def test_interrupted_training_resumes_on_every_core_and_a_finished_run_is_not_repeated(run):
    run_dir = Path(run["best"]).parents[1]
    done = json.loads((run_dir / "train_done.json").read_text())
    assert run["interrupted"] is True
    assert done["resumed"] is True
    assert done["torch_threads"] == [os.cpu_count()]  # the resumed second epoch ran on every core
    epochs = (run_dir / "results.csv").read_text().strip().splitlines()[1:]
    assert [int(float(line.split(",")[0])) for line in epochs] == [1, 2]
    assert run["again"] == run["best"] and run["retrained_on_third_call"] is False


def test_weights_carry_their_scale_config_data_spec_and_scores(run):
    best = Path(run["best"])
    metadata = read_detector_metadata(best)
    assert (metadata.class_names, metadata.imgsz, metadata.um_per_px, metadata.sources) == (["wbc"], 160, 0.3125, ["syn"])
    saved = load_detector_config(best.parent / "detector.yaml")
    assert to_dict(saved) == to_dict(load_detector_config(None, run["config_overrides"]))
    spec = json.loads((best.parent / "data_spec.json").read_text())
    assert spec["sources"]["syn"]["train"]["images"] == 8 and spec["sources"]["syn"]["val"]["images"] == 4
    assert spec["sources"]["syn"]["train"]["scale"]["methods"] == {"um_per_px given": 8}
    scores = json.loads((best.parents[1] / "eval" / "ap50.json").read_text())
    assert set(scores["subsets"]) == {"all", "source:syn"}
    assert scores["subsets"]["source:syn"]["wbc"]["instances"] == sum(run["discs_per_val_image"])
    assert 0.0 <= scores["subsets"]["all"]["wbc"]["ap50"] <= 1.0
    assert "| source:syn | 4 |" in (best.parents[1] / "eval" / "ap50.md").read_text()
    data_yaml = yaml.safe_load((Path(run["work"]) / "run" / "dataset" / "data.yaml").read_text())
    assert Path(data_yaml["train"]).is_absolute() and Path(data_yaml["val"]).is_absolute()


def test_predictions_have_one_result_per_tile_in_tile_pixels(run):
    for backend in ("torch", "onnx"):
        outputs = run["predictions"][backend]
        assert len(outputs) == len(run["tile_shapes"])
        for (boxes, scores, classes), (height, width, _) in zip(outputs, run["tile_shapes"]):
            boxes = np.asarray(boxes).reshape(-1, 4)
            assert len(boxes) == len(scores) == len(classes) > 0
            assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 2] <= width)
            assert np.all(boxes[:, 1] >= 0) and np.all(boxes[:, 3] <= height)
            assert np.all(boxes[:, 2] > boxes[:, 0]) and set(classes) == {0}
            assert all(0.001 < s <= 1 for s in scores) and scores == sorted(scores, reverse=True)


def test_onnx_model_computes_what_the_torch_model_computes(run):
    """Same raw head output on the same canvas, and the same strongest detections."""
    import onnxruntime as ort

    from smearscope.detect.yolo_env import import_yolo
    from smearscope.detect.yolo_predict import to_canvas

    YOLO = import_yolo()
    import torch

    tile = read_image(next((Path(run["work"]) / "source" / "images" / "val").glob("*.png")))
    canvas, _ = to_canvas(np.ascontiguousarray(tile[:120]), 160)
    batch = canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    model = YOLO(run["best"], task="detect").model.float().eval()
    with torch.no_grad():
        raw_torch = model(torch.from_numpy(batch))
    raw_torch = (raw_torch[0] if isinstance(raw_torch, (list, tuple)) else raw_torch).numpy()
    session = ort.InferenceSession(run["onnx"], providers=["CPUExecutionProvider"])
    raw_onnx = session.run(None, {session.get_inputs()[0].name: batch})[0]
    assert raw_onnx.shape == raw_torch.shape == (1, 5, 525)  # 4 box values + 1 class, 20*20 + 10*10 + 5*5
    assert np.allclose(raw_onnx[:, :4], raw_torch[:, :4], atol=1e-2)  # pixels
    assert np.allclose(raw_onnx[:, 4:], raw_torch[:, 4:], atol=1e-4)  # class scores

    for (boxes_t, scores_t, _), (boxes_o, scores_o, _) in zip(run["predictions"]["torch"], run["predictions"]["onnx"]):
        top = min(5, len(scores_t), len(scores_o))
        assert np.allclose(scores_t[:top], scores_o[:top], atol=1e-4)
        assert np.allclose(boxes_t[0], boxes_o[0], atol=0.05)


def test_cli_exports_weights_and_reports_bad_input(run, tmp_path, capsys):
    from smearscope.tools.cli import main

    out = tmp_path / "cli" / "detector.onnx"
    assert main(["export-detector", run["best"], "--out", str(out)]) == 0
    assert read_detector_metadata(out) == read_detector_metadata(run["best"])
    out.with_name("detector.onnx.json").unlink()
    assert read_detector_metadata(out).um_per_px == 0.3125  # from the ONNX file's own metadata
    assert sorted(p.name for p in Path(run["best"]).parent.iterdir()) == [
        "best.pt", "best.pt.json", "data_spec.json", "detector.yaml", "last.pt", "last.pt.json"]
    assert main(["export-detector", str(tmp_path / "none.pt"), "--out", str(out)]) == 1
    assert "none.pt: weights file not found" in capsys.readouterr().err
    assert main(["train-detector", str(tmp_path / "missing.yaml"), "--work", str(tmp_path)]) == 1
    assert "missing.yaml: config file not found" in capsys.readouterr().err


def test_a_different_config_in_the_same_work_folder_is_refused(run):
    from smearscope.detect.yolo_train import train_detector

    config = load_detector_config(None, [*run["config_overrides"], "epochs=3"])
    with pytest.raises(ValueError, match="holds a run with a different configuration"):
        train_detector(config, Path(run["work"]) / "run")


def test_a_run_resumes_with_another_thread_count(run):
    from smearscope.detect.yolo_train import _check_same_run

    run_dir = Path(run["best"]).parents[1]
    saved = load_detector_config(run_dir / "detector.yaml")
    _check_same_run(load_detector_config(None, [*run["config_overrides"], f"threads={saved.threads + 1}"]), run_dir)
    with pytest.raises(ValueError, match="holds a run with a different configuration"):
        _check_same_run(load_detector_config(None, [*run["config_overrides"], "epochs=3"]), run_dir)


def test_predictor_batches_consistently_and_plugs_into_the_whole_capture_runner(run, no_network):
    from smearscope.detect.detections import Detections
    from smearscope.detect.infer import detect_capture
    from smearscope.detect.yolo_predict import load_predictor

    tiles = [read_image(p) for p in sorted((Path(run["work"]) / "source" / "images" / "val").glob("*.png"))]
    one_by_one = load_predictor(run["best"], conf=0.001, batch=1)
    in_batches = load_predictor(run["best"], conf=0.001, batch=3)
    assert one_by_one.metadata.um_per_px == 0.3125 and in_batches.imgsz == 160
    for (b1, s1, c1), (b3, s3, c3) in zip(one_by_one(tiles), in_batches(tiles)):
        assert np.allclose(s1, s3, atol=1e-5) and np.allclose(b1[0], b3[0], atol=1e-2)
    assert in_batches([]) == []

    capture = np.ascontiguousarray(np.tile(tiles[0], (2, 3, 1))[:300, :420])
    found = detect_capture(capture, in_batches, tile=160, overlap=32, batch=4, conf=0.001)
    assert isinstance(found, Detections) and len(found) > 0
    assert np.all(found.xyxy >= 0) and np.all(found.xyxy[:, [0, 2]] <= 420) and np.all(found.xyxy[:, [1, 3]] <= 300)
    assert no_network == []
