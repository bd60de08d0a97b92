"""``smearscope train-cells`` and ``smearscope evaluate-cells``: the cell type + attribute model."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-cells`` and ``evaluate-cells`` subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    train = subparsers.add_parser(
        "train-cells",
        help="train the cell type + morphological attribute model",
        description="Train the multi-head cell model (cell type plus the LeukemiaAttri and WBCAtt\n"
        "attributes) from a YAML config (configs/cells.yaml) with key=value overrides, e.g.\n"
        "  smearscope train-cells configs/cells.yaml data.wbcatt_root=/data/wbcatt optim.epochs=20 --work runs/cells\n"
        "Cells are cropped once into WORK/cache; an interrupted run resumes from WORK/last.pt.\n"
        "Writes WORK/best.pt (the model), WORK/metrics.json, WORK/config.yaml (resolved) and\n"
        "WORK/load_issues.txt. Relative paths resolve against the current directory.",
        formatter_class=formatter,
    )
    train.add_argument("config", type=Path, metavar="CONFIG", help="training config YAML")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.epochs=5")
    train.add_argument("--work", required=True, type=Path, metavar="DIR",
                       help="work folder for the cache, checkpoints and logs")
    train.set_defaults(run=run_train)

    evaluate = subparsers.add_parser(
        "evaluate-cells",
        help="score a cell model on labelled cells (per head, source and domain)",
        description="Score a cell model checkpoint on one labelled data set: type accuracy and macro-F1\n"
        "(fine and by group), every attribute head's accuracy and macro-F1, confusion matrices,\n"
        "per source and per domain. Writes OUT/<name>.json and OUT/<name>.md.\n"
        "Data sets:\n"
        "  --wbcatt DIR          a folder in the WBCAtt layout (pbc_attr_v1_<split>.csv + images/)\n"
        "  --leukemiaattri DIR   LeukemiaAttri_Dataset/ or its parent (domain folders)\n"
        "  --bccd DIR            a BCCD VOC folder with wbc_types.csv (fields with one WBC)",
        formatter_class=formatter,
    )
    evaluate.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a best.pt written by train-cells")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--wbcatt", type=Path, metavar="DIR", help="WBCAtt-layout folder")
    source.add_argument("--leukemiaattri", type=Path, metavar="DIR", help="LeukemiaAttri-layout folder")
    source.add_argument("--bccd", type=Path, metavar="DIR", help="BCCD folder with wbc_types.csv")
    evaluate.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    evaluate.add_argument("--split",
                          help="wbcatt: read pbc_attr_v1_<split>.csv (default val); leukemiaattri: one split (default all)")
    evaluate.add_argument("--csv", metavar="NAME", help="wbcatt: CSV file name inside DIR (overrides --split)")
    evaluate.add_argument("--domains", help="leukemiaattri: comma-separated domain folders (default: all)")
    evaluate.add_argument("--um-per-px", type=float, metavar="UM",
                          help="scale of the images when they do not say "
                          "(default: wbcatt 0.1, bccd measured from RBC boxes)")
    evaluate.add_argument("--name", default="evaluation", help="output file stem (default: evaluation)")
    evaluate.set_defaults(run=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    """Train and print where the checkpoint is."""
    from smearscope.attributes.train import train_cells
    from smearscope.attributes.train_config import load_cell_train_config

    config = load_cell_train_config(args.config, args.overrides)
    checkpoint = train_cells(config, args.work)
    print(f"checkpoint: {checkpoint}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    """Load the chosen data set, score the checkpoint, print the headline numbers."""
    from smearscope.attributes.evaluate import evaluate_cells
    from smearscope.attributes.train_config import DataSection

    scales = dict(DataSection().um_per_px)
    if args.wbcatt:
        from smearscope.datasets.sources.wbcatt import load_wbcatt

        result = load_wbcatt(args.wbcatt, args.split or "val", args.csv, args.um_per_px or scales.get("wbcatt"))
    elif args.leukemiaattri:
        from smearscope.datasets.formats.leukemiaattri import load_leukemiaattri

        domains = [d for d in (args.domains or "").split(",") if d] or None
        result = load_leukemiaattri(args.leukemiaattri, domains, [args.split] if args.split else None)
    else:
        from smearscope.datasets.sources.bccd_types import load_bccd_types

        result = load_bccd_types(args.bccd, um_per_px=args.um_per_px)
    for issue in result.issues:
        print(f"issue: {issue}")
    if args.um_per_px:
        scales = {source: args.um_per_px for source in ("wbcatt", "bccd", "leukemiaattri")}
    report = evaluate_cells(args.checkpoint, result.records, args.out, args.name, scales)
    overall = report["overall"]
    cell_type = overall["cell_type"]
    print(f"cells {overall['n']}: type accuracy {cell_type.get('accuracy', float('nan')):.4f}, "
          f"group accuracy {cell_type.get('group_accuracy', float('nan')):.4f}, "
          f"mean attribute accuracy {overall.get('mean_attribute_accuracy', float('nan')):.4f}")
    print(f"written: {Path(args.out) / (args.name + '.json')}, {Path(args.out) / (args.name + '.md')}")
    return 0
