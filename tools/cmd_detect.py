"""``smearscope train-detector`` and ``smearscope export-detector``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

_TRAIN_EPILOG = """Overrides are key=value pairs on the config, e.g.
  epochs=5 imgsz=320 threads=1 data_root=/data
  sources.bccd.path=/data/BCCD sources.phantom.enabled=false
  sources.txl_raabin.splits="{val: val}"     (score a source without training on it)
Relative source paths resolve against data_root, itself relative to the current directory.

Output in WORK: dataset/ (tiles at the training scale), runs/<name>/weights/best.pt with
best.pt.json (classes, imgsz, um_per_px), detector.yaml (resolved config), data_spec.json,
and runs/<name>/eval/ap50.{json,md} (AP50 per source and per domain on the val splits).
Run the same command again to resume an interrupted run."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-detector`` and ``export-detector`` subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    train = subparsers.add_parser(
        "train-detector",
        help="train a YOLO WBC detector from scratch on annotated sources",
        description="Read every source of a detector config, resample all images to one physical\n"
        "scale (um_per_px), cut them into tiles, train a YOLO model from its YAML (no pretrained\n"
        "weights, nothing downloaded) and report AP50 per source and per domain.",
        epilog=_TRAIN_EPILOG,
        formatter_class=formatter,
    )
    train.add_argument("config", type=Path, help="detector YAML, e.g. configs/detector.yaml")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    train.add_argument("--work", required=True, type=Path, metavar="DIR", help="work folder for data, runs and weights")
    train.set_defaults(run=run_train)

    export = subparsers.add_parser(
        "export-detector",
        help="export detector weights (.pt) to ONNX, with their metadata",
        description="Export .pt detector weights to an ONNX model (dynamic batch and size) for\n"
        "onnxruntime. The classes, tile size and um_per_px of the weights go into the ONNX\n"
        "metadata and a .json file beside it. Nothing is written beside the input.",
        formatter_class=formatter,
    )
    export.add_argument("weights", type=Path, help="best.pt of a train-detector run (with best.pt.json beside it)")
    export.add_argument("--out", required=True, type=Path, metavar="PATH", help="output .onnx file")
    export.add_argument("--imgsz", type=int, default=None, help="export input size (default: the training size)")
    export.set_defaults(run=run_export)


def run_train(args: argparse.Namespace) -> int:
    """Train, then print the weights path and the AP50 table."""
    from smearscope.detect.config import load_detector_config
    from smearscope.detect.yolo_train import train_detector

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = load_detector_config(args.config, args.overrides)
    best = train_detector(config, args.work)
    print(f"weights: {best}")
    print((best.parent.parent / "eval" / "ap50.md").read_text(encoding="utf-8"))
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Export, then print the ONNX path."""
    from smearscope.detect.yolo_predict import export_detector

    print(export_detector(args.weights, args.out, imgsz=args.imgsz))
    return 0
