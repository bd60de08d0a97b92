"""``smearscope import``, ``smearscope evaluate`` and ``smearscope app``: data and model
mistakes in FiftyOne."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from smearscope.datasets.catalog import SOURCES

_DATABASE = """FiftyOne keeps its datasets in the embedded MongoDB under $SMEARSCOPE_HOME/fiftyone/db
(default ~/.smearscope); set FIFTYONE_DATABASE_DIR to use another folder, or
FIFTYONE_DATABASE_URI to use your own MongoDB server."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import``, ``evaluate`` and ``app`` subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    sources = "\n".join(f"  {name:<20} {what}" for name, what in SOURCES.items())

    imp = subparsers.add_parser(
        "import",
        help="import a data set into a persistent FiftyOne dataset",
        description="Read a data set and put it into the FiftyOne dataset --name (created when missing).\n"
        "Ground truth goes to --field: Detections, or a Classification for single-cell sets;\n"
        "labels are unified cell types with the source label and attributes attached; domain\n"
        "fields (source, microscope, magnification, camera, domain, patient, diagnosis, split,\n"
        "um_per_px) are set on each sample. Importing the same images again updates their\n"
        "samples instead of adding new ones. Prints a summary and every skipped file.\n"
        "Exit code 0 when nothing was skipped, 1 otherwise.",
        epilog=f"SOURCE and PATH:\n{sources}\n\n{_DATABASE}",
        formatter_class=formatter,
    )
    imp.add_argument("source", choices=list(SOURCES), metavar="SOURCE", help="which data set (see below)")
    imp.add_argument("path", type=Path, metavar="PATH", help="where it is (see below)")
    imp.add_argument("--name", required=True, help="FiftyOne dataset name")
    imp.add_argument("--split", choices=("train", "val", "test"), help="import only this split")
    imp.add_argument("--field", default="ground_truth", help="sample field for the labels (default ground_truth)")
    imp.set_defaults(run=run_import)

    ev = subparsers.add_parser(
        "evaluate",
        help="score predictions against ground truth per domain; write a report",
        description="Evaluate --pred-field against --gt-field of a FiftyOne dataset, overall, per domain\n"
        "(microscope x magnification x camera) and per source: COCO mAP50 and mAP50-95 from\n"
        "FiftyOne, recomputed with pycocotools as a check; type accuracy and attribute\n"
        "accuracy / macro-F1 of matched cells. Stores the results on the dataset and writes\n"
        "report.md, report.html (plots embedded), report.json and the plot PNGs under --out.",
        epilog=_DATABASE,
        formatter_class=formatter,
    )
    ev.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    ev.add_argument("--pred-field", default="predictions", help="predicted detections (default predictions)")
    ev.add_argument("--gt-field", default="ground_truth", help="ground-truth detections (default ground_truth)")
    ev.add_argument("--eval-key", default="eval", help="name of the stored evaluation (default eval)")
    ev.add_argument("--classes", help="comma-separated labels to evaluate (default: all), e.g. the WBC types")
    ev.add_argument("--out", required=True, type=Path, metavar="DIR", help="report folder")
    ev.set_defaults(run=run_evaluate)

    app = subparsers.add_parser(
        "app",
        help="open a dataset in the FiftyOne App (local web server)",
        description="Serve the FiftyOne App on --address:--port and print the dataset's URL. Before\n"
        "serving, saved views are created on the dataset: per domain the false negatives and\n"
        "false positives of the evaluation --eval-key (if one exists), cells whose predicted\n"
        "attributes disagree with the ground truth, and cells flagged for review by the cell\n"
        "model. Stop with Ctrl-C (or SIGTERM): the server is shut down, nothing is left running.",
        epilog=_DATABASE,
        formatter_class=formatter,
    )
    app.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    app.add_argument("--port", type=int, default=5151, help="port (default 5151)")
    app.add_argument("--address", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    app.add_argument("--pred-field", default="predictions", help="predictions field for the saved views")
    app.add_argument("--gt-field", default="ground_truth", help="ground-truth field for the saved views")
    app.add_argument("--eval-key", default="eval", help="evaluation the saved views come from (default eval)")
    app.set_defaults(run=run_app)


def run_import(args: argparse.Namespace) -> int:
    from smearscope.datasets.catalog import load_source
    from smearscope.datasets.fiftyone_bridge import import_records

    loaded = load_source(args.source, args.path, args.split)
    summary = import_records(loaded.records, args.name, field=args.field, issues=loaded.issues)
    types = Counter(t for record in loaded.records for t in record.cell_types)
    domains = Counter(record.domain.name for record in loaded.records)
    print(f"{summary}")
    print(f"read {len(loaded.records)} images, {sum(types.values())} cells from {args.source} at {args.path}")
    print("cells per type: " + (", ".join(f"{t} {n}" for t, n in types.most_common()) or "none"))
    print("images per domain: " + (", ".join(f"{d} {n}" for d, n in sorted(domains.items())) or "none"))
    for issue in summary.issues:
        print(f"skipped or noted: {issue}")
    return 1 if summary.issues else 0


def run_evaluate(args: argparse.Namespace) -> int:
    from smearscope.datasets.eval_report import write_report
    from smearscope.datasets.evaluation import evaluate_dataset

    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    report = evaluate_dataset(args.dataset, args.pred_field, args.gt_field, args.eval_key, classes)
    paths = write_report(report, args.out)
    print(f"{'group':<28} {'images':>6} {'mAP50':>7} {'mAP50-95':>9} {'cell mAP50':>10} {'type acc':>8}")
    for g in report.groups:
        def fmt(v):
            return "n/a" if v is None else f"{v:.3f}"
        print(f"{g.name:<28} {g.images:>6} {fmt(g.map50):>7} {fmt(g.map50_95):>9} {fmt(g.agnostic_map50):>10} "
              f"{fmt(g.type_accuracy):>8}")
    verdict = "agree" if report.coco_agrees else "WARNING: disagree"
    print(f"FiftyOne vs pycocotools: {verdict} (largest difference {report.max_coco_difference:.1e}, "
          f"tolerance {report.tolerance:.0e})")
    print(f"report: {paths['html']} (also {paths['markdown'].name}, {paths['json'].name} and plots)")
    return 0


def run_app(args: argparse.Namespace) -> int:
    from smearscope.datasets.fiftyone_bridge import open_dataset
    from smearscope.datasets.fiftyone_views import save_review_views, view_slug
    from smearscope.tools.fiftyone_app import dataset_url, serve_until_stopped, start_app

    dataset = open_dataset(args.dataset)
    views = save_review_views(dataset, args.pred_field, args.gt_field, args.eval_key)
    try:
        server = start_app(args.port, args.address)
    except RuntimeError as exc:
        print(f"smearscope app: error: {exc}", file=sys.stderr)
        return 1
    lines = [f"FiftyOne App: {dataset_url(server.url, dataset.name)}"]
    lines += [f"  saved view {name!r}: {dataset_url(server.url, dataset.name, view_slug(name))}" for name in views]
    lines.append("Press Ctrl-C to stop.")
    return serve_until_stopped(server, "\n".join(lines))
