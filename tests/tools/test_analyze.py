"""The main job end to end with the bundled models, on a synthetic capture with known cells."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from smearscope.datasets.formats.coco import load_coco
from smearscope.datasets.phantom import render_capture
from smearscope.datasets.schema import taxonomy
from smearscope.tools.analyze import default_weights
from smearscope.tools.cli import main

from browser_support import capture, chromium_path

SEED = 11


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of xyxy boxes."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """One synthetic capture (plus a broken one) analysed through the command line."""
    try:
        default_weights()
    except ValueError as exc:
        pytest.fail(f"bundled weights missing: {exc}")
    root = tmp_path_factory.mktemp("analyze")
    captures = root / "captures"
    captures.mkdir()
    image, truth = render_capture(SEED, width=1400, height=1000, magnification="40X", microscope="H", camera="C1")
    png = captures / "smear.png"
    cv2.imwrite(str(png), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    data = cv2.imencode(".png", np.zeros((50, 60, 3), np.uint8))[1].tobytes()
    (captures / "cut.png").write_bytes(data[: len(data) // 2])
    before = {p.name: p.read_bytes() for p in captures.iterdir()}
    out = root / "out"
    code = main(["analyze", str(captures), "--out", str(out), "--um-per-px", str(truth.domain.um_per_px)])
    return {"code": code, "out": out, "truth": truth, "captures": captures, "before": before}


def test_every_output_is_written_and_consistent(analysed):
    folder = analysed["out"] / "smear"
    names = {p.name for p in folder.iterdir()}
    assert {"cells.csv", "cells.coco.json", "cells.geojson", "overlay.png", "differential.json",
            "report.html", "result.json"} <= names
    with (folder / "cells.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    coco = load_coco(folder / "cells.coco.json", image_root=analysed["captures"])
    strict = {"parse_constant": lambda name: pytest.fail(f"{name} written into JSON")}
    features = json.loads((folder / "cells.geojson").read_text(), **strict)["features"]
    json.loads((folder / "result.json").read_text(), **strict)
    assert len(rows) == len(coco.records[0]) == len(features) > 0
    diff = json.loads((folder / "differential.json").read_text())
    assert diff["total_wbc"] == sum(taxonomy().is_wbc[r["cell_type"]] for r in rows)
    assert all(r["rationale"].startswith(r["cell_type"].replace("_", " ")) for r in rows)
    overlay = cv2.imread(str(folder / "overlay.png"))
    assert overlay.shape[:2] == (1000, 1400)


def test_white_cells_are_found(analysed):
    truth = analysed["truth"]
    wbc = np.array([taxonomy().is_wbc[t] for t in truth.cell_types])
    gt = truth.boxes_xyxy[wbc]
    result = json.loads((analysed["out"] / "smear" / "result.json").read_text())
    found = np.array([c["box_xyxy"] for c in result["cells"]], dtype=np.float64).reshape(-1, 4)
    assert len(gt) >= 10
    ious = iou_matrix(gt, found) if len(found) else np.zeros((len(gt), 0))
    recall = float((ious.max(axis=1) >= 0.5).mean()) if ious.size else 0.0
    precision = float((iou_matrix(found, truth.boxes_xyxy).max(axis=1) >= 0.5).mean()) if len(found) else 0.0
    assert recall >= 0.8, f"recall {recall:.2f} of {len(gt)} white cells"
    assert precision >= 0.7, f"precision {precision:.2f} of {len(found)} detections"


def test_bad_capture_is_listed_inputs_untouched_and_rerun_skips(analysed, capsys):
    assert analysed["code"] == 1
    batch = json.loads((analysed["out"] / "batch.json").read_text())
    assert list(batch["failed"]) == [str((analysed["captures"] / "cut.png").resolve())]
    assert "cut.png: truncated image file" in batch["failed"][str((analysed["captures"] / "cut.png").resolve())]
    assert {p.name: p.read_bytes() for p in analysed["captures"].iterdir()} == analysed["before"]
    smear = analysed["captures"] / "smear.png"
    um_per_px = str(analysed["truth"].domain.um_per_px)
    code = main(["analyze", str(smear), "--out", str(analysed["out"]), "--um-per-px", um_per_px])
    assert code == 0
    assert "already done 1" in capsys.readouterr().out
    code = main(["analyze", str(smear), "--out", str(analysed["out"]), "--um-per-px", "0.3"])
    assert code == 1
    assert "holds results made with other settings (um_per_px)" in capsys.readouterr().err


@pytest.mark.skipif(chromium_path() is None, reason="chromium not installed (make test installs it: make browser)")
def test_report_renders_in_a_real_browser(analysed, tmp_path):
    report = analysed["out"] / "smear" / "report.html"
    png = tmp_path / "report.png"
    page = capture(report.as_uri(), png, "document.querySelectorAll('.cell').length > 0", tmp_path / "profile")
    cells = json.loads((analysed["out"] / "smear" / "result.json").read_text())["cells"]
    assert page.html.count('class="cell') == len(cells)
    assert "Differential count" in page.text and "total WBCs" in page.text
    assert png.stat().st_size > 10_000
    artifacts = os.environ.get("SMEARSCOPE_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, Path(artifacts) / "analyze_report.png")
