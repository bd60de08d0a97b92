"""``smearscope analyze`` and ``smearscope demo``: the main job on captures or on the bundled samples."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from smearscope.tools.engines import add_engine_arguments, run_with_engine


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``analyze`` and ``demo`` subcommands."""
    analyze = subparsers.add_parser(
        "analyze",
        help="find, type and explain every WBC in captures; write reports and a differential count",
        description=(
            "Analyse slide captures (files, folders searched recursively, or a manifest): detect every "
            "white cell, predict its type and morphological attributes, explain each call, and write per "
            "capture cells.csv, cells.coco.json, cells.geojson, overlay.png, differential.json and "
            "report.html into OUT/<capture name>/. Captures already done are skipped on a re-run; a capture "
            "that fails is listed with its reason and the rest goes on."
        ),
    )
    analyze.add_argument("inputs", nargs="+", metavar="CAPTURE_OR_FOLDER", help="capture files, folders or a manifest")
    analyze.add_argument("--out", required=True, type=Path, help="output folder")
    add_model_arguments(analyze)
    add_engine_arguments(analyze)
    analyze.add_argument("--fiftyone", metavar="NAME", help="also add the results to this FiftyOne dataset")
    analyze.set_defaults(run=run_analyze)

    predict = subparsers.add_parser(
        "predict",
        help="run the detector and cell model on every image of a FiftyOne dataset",
        description="Analyse every image of a FiftyOne dataset and store the predicted cells (type, "
                    "attributes, probabilities, review flag, rationale) in a label field, ready for "
                    "`smearscope evaluate` and `smearscope app`.",
    )
    predict.add_argument("--dataset", required=True, help="FiftyOne dataset name")
    predict.add_argument("--field", default="predictions", help="label field to write (default: predictions)")
    predict.add_argument("--work", type=Path, default=None,
                         help="folder for the per-image results (default: $SMEARSCOPE_HOME/predict/<dataset>)")
    add_model_arguments(predict)
    predict.set_defaults(run=run_predict)

    demo = subparsers.add_parser(
        "demo",
        help="analyse the bundled sample captures offline and print where the report is",
        description="Run `analyze` on the sample captures shipped with smearscope (a real BCCD field "
                    "and a synthetic large capture) with the bundled default models.",
    )
    demo.add_argument("--out", type=Path, default=Path("smearscope-demo"), help="output folder (default: ./smearscope-demo)")
    demo.set_defaults(run=run_demo)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Scale and model options shared by the commands that analyse captures."""
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--um-per-px", type=float, help="micrometres per pixel of the captures")
    scale.add_argument("--magnification", help="objective magnification preset, e.g. 100x, 40x, 10x (configs/optics.yaml)")
    parser.add_argument("--camera", help="camera preset with --magnification, e.g. C1 or C2")
    parser.add_argument("--detector", help="detector weights (.pt or .onnx); default: the bundled detector")
    parser.add_argument("--cells", help="cell-model checkpoint (.pt); default: the bundled cell model")
    parser.add_argument("--conf", type=float, default=0.25, help="detection confidence threshold (default 0.25)")
    parser.add_argument("--no-report", action="store_true", help="skip the HTML report")


def options_from_args(args: argparse.Namespace):
    """AnalyzeOptions from parsed arguments."""
    from smearscope.tools.analyze import AnalyzeOptions

    magnification = args.magnification.upper() if args.magnification else None
    if args.camera and not magnification:
        raise ValueError("--camera is a preset used with --magnification")
    if magnification:
        from smearscope.detect.scale import scale_from_preset

        scale_from_preset(magnification, args.camera)  # an unknown preset fails here, once
    if not 0.0 < args.conf < 1.0:
        raise ValueError(f"--conf must lie between 0 and 1, got {args.conf}")
    return AnalyzeOptions(
        detector=args.detector, cells=args.cells, um_per_px=args.um_per_px, magnification=magnification,
        camera=args.camera, conf=args.conf, report=not args.no_report,
    )


def run_analyze(args: argparse.Namespace) -> int:
    """Analyse the captures; exit 1 if any failed."""
    from smearscope.tools.analyze import check_settings, make_capture_job
    from smearscope.tools.batch_summary import write_batch_summary

    options = options_from_args(args)
    check_settings(args.out, options)
    summary = run_with_engine(args, args.inputs, args.out, functools.partial(make_capture_job, options))
    table = write_batch_summary(args.out)
    if args.fiftyone:
        from smearscope.tools.fiftyone_results import add_results_to_fiftyone

        added = add_results_to_fiftyone(args.out, args.fiftyone)
        print(f"FiftyOne dataset {args.fiftyone}: {added} captures added or updated")
    print(f"analysed {len(summary.done)}, already done {len(summary.skipped)}, failed {len(summary.failed)}")
    for reason in summary.failed.values():
        print(f"failed: {reason}", file=sys.stderr)
    print(f"summary: {table}")
    return 1 if summary.failed else 0


def run_predict(args: argparse.Namespace) -> int:
    """Predict on a FiftyOne dataset; exit 1 if any image failed."""
    from smearscope.datasets.runtime import smearscope_home
    from smearscope.tools.fiftyone_results import predict_dataset

    work = args.work or smearscope_home() / "predict" / args.dataset
    summary = predict_dataset(args.dataset, options_from_args(args), work, field=args.field)
    print(f"dataset {args.dataset}: {len(summary.done) + len(summary.skipped)} images predicted into "
          f"'{args.field}', {len(summary.failed)} failed")
    for reason in summary.failed.values():
        print(f"failed: {reason}", file=sys.stderr)
    return 1 if summary.failed else 0


def run_demo(args: argparse.Namespace) -> int:
    """Analyse the bundled samples and print where the reports are."""
    from smearscope.tools.analyze import AnalyzeOptions, check_settings, make_capture_job
    from smearscope.tools.batch import run_batch
    from smearscope.tools.batch_summary import write_batch_summary
    from smearscope.tools.samples import sample_captures

    captures = sample_captures()
    options = AnalyzeOptions()
    check_settings(args.out, options)
    summary = run_batch(captures, args.out, make_capture_job(options))
    table = write_batch_summary(args.out)
    for reason in summary.failed.values():
        print(f"failed: {reason}", file=sys.stderr)
    for folder in sorted(p for p in args.out.iterdir() if (p / "report.html").is_file()):
        print(f"report: {(folder / 'report.html').resolve()}")
    print(f"summary: {table.resolve()}")
    return 1 if summary.failed else 0
