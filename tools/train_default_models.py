"""Train the default detector and cell model that ship inside the package, reproducibly.

    python -m smearscope.tools.train_default_models --data-root ../shared/data --work runs/defaults

Trains the WBC detector (phantom smears in all 12 domains + BCCD + TXL-Raabin) and the cell
model (WBCAtt + phantom cells of the LeukemiaAttri classes; BCCD kept out as an unseen lab),
exports the detector to ONNX, copies both into ``detect/weights/`` and
``attributes/weights/`` of this source tree, and writes
``provenance.json`` beside each with the data, settings, time taken and validation figures.
Both runs are resumable: run the same command again after an interruption.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from smearscope.datasets.io import read_json, write_json_atomic

SOURCE_ROOT = Path(__file__).resolve().parent.parent
# Phantom fields in all 12 domains as configs/detector.yaml draws them (10X fields small, so
# that they do not outnumber the others once enlarged to the detector's scale).
DETECTOR_OVERRIDES = ["name=default", "imgsz=320", "batch=16", "workers=0", "patience=100"]
# The cell model: WBCAtt plus phantom cells of the LeukemiaAttri white-cell classes (blasts and
# immature cells that WBCAtt lacks) drawn in 8 domains, sampled at 0.4 of their share so
# real cells dominate; no phantom artifacts (learnt from drawings alone, they took real
# neutrophils of an unseen lab for artifacts); BCCD stays out as an unseen lab.
PHANTOM_CELL_TYPES = ("myeloblast,lymphoblast,neutrophil,atypical_lymphocyte,promonocyte,monoblast,lymphocyte,"
                      "myelocyte,abnormal_promyelocyte,monocyte,metamyelocyte,eosinophil,basophil")
CELL_OVERRIDES = [
    "val_every=2", "steps_per_epoch=110", "data.phantom_cells=1680", "data.phantom_val_cells=280",
    "data.phantom_domains=[H_100X_C1,H_100X_C2,L_100X_C1,L_100X_C2,H_40X_C1,H_40X_C2,L_40X_C1,L_40X_C2]",
    f"data.phantom_types=[{PHANTOM_CELL_TYPES}]", "data.source_weights={phantom: 0.4}",
]


def train_default_detector(data_root: Path, work: Path, hours: float, install: Path,
                           extra: tuple[str, ...] = ()) -> dict:
    """Train, export and install the default detector; return its provenance."""
    from smearscope.detect.config import default_config_path, load_detector_config
    from smearscope.detect.yolo_predict import export_detector
    from smearscope.detect.yolo_train import train_detector

    overrides = [f"data_root={data_root}", f"time_hours={hours}", *DETECTOR_OVERRIDES, *extra]
    config = load_detector_config(default_config_path(), overrides)
    started = time.time()
    best = train_detector(config, work / "detector")
    onnx = export_detector(best, work / "detector" / "detector.onnx")
    install.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx, install / "detector.onnx")
    sidecar = onnx.with_name(onnx.name + ".json")
    if sidecar.is_file():
        shutil.copyfile(sidecar, install / "detector.onnx.json")
    eval_dir = best.parent.parent / "eval"
    report = read_json(eval_dir / "ap50.json") if (eval_dir / "ap50.json").is_file() else {}
    provenance = {
        "weights": "detector.onnx", "overrides": overrides, "trained_from": str(best),
        "hours": round((time.time() - started) / 3600, 3), "validation": report,
    }
    write_json_atomic(install / "provenance.json", provenance)
    return provenance


def train_default_cells(data_root: Path, work: Path, epochs: int, install: Path,
                        extra: tuple[str, ...] = ()) -> dict:
    """Train and install the default cell model; return its provenance."""
    from smearscope.attributes.train import train_cells
    from smearscope.attributes.train_config import load_cell_train_config

    overrides = [f"data.wbcatt_root={data_root / 'wbcatt'}", f"optim.epochs={epochs}", *CELL_OVERRIDES, *extra]
    config = load_cell_train_config(SOURCE_ROOT / "configs" / "cells.yaml", overrides)
    started = time.time()
    best = train_cells(config, work / "cells")
    install.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, install / "cells.pt")
    metrics = work / "cells" / "metrics.json"
    provenance = {
        "weights": "cells.pt", "overrides": overrides, "trained_from": str(best),
        "hours": round((time.time() - started) / 3600, 3),
        "validation": read_json(metrics) if metrics.is_file() else {},
    }
    write_json_atomic(install / "provenance.json", provenance)
    return provenance


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"),
                        help="folder holding bccd/, txl_raabin/ and wbcatt/ (default ../shared/data)")
    parser.add_argument("--work", type=Path, default=Path("runs/defaults"), help="work folder (resumable)")
    parser.add_argument("--only", choices=("detector", "cells"), help="train one of the two models")
    parser.add_argument("--detector-hours", type=float, default=0.75, help="training time of the detector")
    parser.add_argument("--cell-epochs", type=int, default=30, help="epochs of the cell model")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads of each training (default: each config's own), e.g. 1 to share the machine")
    args = parser.parse_args(argv)
    extra = () if args.threads is None else (f"threads={args.threads}",)
    data_root = args.data_root.resolve()
    if not data_root.is_dir():
        print(f"{data_root}: data folder not found", file=sys.stderr)
        return 1
    work = args.work.resolve()
    if args.only in (None, "detector"):
        print(train_default_detector(data_root, work, args.detector_hours, SOURCE_ROOT / "detect" / "weights", extra))
    if args.only in (None, "cells"):
        print(train_default_cells(data_root, work, args.cell_epochs, SOURCE_ROOT / "attributes" / "weights", extra))
    return 0


if __name__ == "__main__":
    sys.exit(main())
