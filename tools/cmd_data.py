"""``smearscope inspect`` and ``smearscope convert``: read annotation folders, summarise, convert."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

FORMATS = ("coco", "yolo", "voc", "leukemiaattri")

_PATHS = """PATH by format:
  coco           the JSON file (images resolve against --images, default its folder)
  yolo           a folder with images/, labels/ and classes.txt or data.yaml
                 (images/<split>/ and labels/<split>/ sub-folders are read too)
  voc            a folder with Annotations/, JPEGImages/ and optionally ImageSets/Main/
  leukemiaattri  LeukemiaAttri_Dataset/ or its parent: <Domain>/{Images|images}/<split>/,
                 <Domain>/json_labels/<split>.json, <Domain>/txt_labels/AttriDet/<split>/
                 (labels.zip inside a domain folder is read without extracting it)"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``inspect`` and ``convert`` subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    inspect = subparsers.add_parser(
        "inspect",
        help="summarise an annotated data set and list every problem in it",
        description="Read an annotated data set and print a summary (images, cells per unified type,\n"
        "per domain, attribute coverage) and every problem found, one per line.\n"
        "Exit code 0 when nothing is wrong, 1 when problems were found (the summary is\n"
        "printed all the same).",
        epilog=_PATHS,
        formatter_class=formatter,
    )
    _add_input_arguments(inspect)
    inspect.set_defaults(run=run_inspect)

    convert = subparsers.add_parser(
        "convert",
        help="convert an annotated data set to another format (images are copied)",
        description="Read an annotated data set and write it, with copies of its images, in another\n"
        "format under --out. Problems are reported one per line and the rest is converted.\n"
        "The input is never modified. Exit code 0 when nothing was wrong, 1 when problems\n"
        "were reported.",
        epilog=_PATHS + """

Output by --to:
  coco           OUT/annotations.json, OUT/images/[<split>/]
  yolo           OUT/images/<split>/, OUT/labels/<split>/, OUT/classes.txt
  voc            OUT/Annotations/, OUT/JPEGImages/, OUT/ImageSets/Main/<split>.txt
  leukemiaattri  OUT/<Domain>/Images/<split>/, json_labels/, txt_labels/AttriDet/""",
        formatter_class=formatter,
    )
    _add_input_arguments(convert)
    out = convert.add_argument_group("output")
    out.add_argument("--to", required=True, choices=FORMATS, metavar="FORMAT", help=f"output format: {', '.join(FORMATS)}")
    out.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (not inside the input)")
    out.add_argument("--to-variant", default="auto", choices=("auto", "plain", "attridet"),
                     help="yolo output lines: plain (5 columns), attridet (12, with LeukemiaAttri attributes), "
                     "auto = attridet when the cells carry LeukemiaAttri attributes (default)")
    out.add_argument("--domain", metavar="NAME",
                     help="leukemiaattri output: domain folder such as H_100X_C1 for images that have none "
                     "(their split defaults to train)")
    convert.set_defaults(run=run_convert)


def _add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=FORMATS, metavar="FORMAT", help=f"input format: {', '.join(FORMATS)}")
    parser.add_argument("path", type=Path, metavar="PATH", help="the data set (see below)")
    group = parser.add_argument_group("input options")
    group.add_argument("--source", help="label map in configs/taxonomy.yaml used to read class names "
                       "(defaults: coco, yolo, bccd for voc; leukemiaattri is fixed)")
    group.add_argument("--images", help="coco: image root (default: the JSON's folder); yolo: images folder")
    group.add_argument("--labels", help="yolo: labels folder (default PATH/labels)")
    group.add_argument("--names", help="yolo: comma-separated class names in id order (default: classes.txt)")
    group.add_argument("--variant", default="auto", choices=("auto", "plain", "attridet", "lld"),
                       help="yolo: expected label columns, 5 / 12 / 16; auto accepts each per line (default)")
    group.add_argument("--split", help="voc: read only ImageSets/Main/<split>.txt (default: every annotation)")
    group.add_argument("--domains", help="leukemiaattri: comma-separated domain folders, e.g. H_100X_C1,L_40X_C2")
    group.add_argument("--splits", help="leukemiaattri: comma-separated splits (default: all)")
    group.add_argument("--prefer", default="json", choices=("json", "txt"),
                       help="leukemiaattri: read COCO JSON or AttriDet txt labels first (default json)")


def _load(args: argparse.Namespace):
    from smearscope.datasets.formats.convert import ReadOptions, load_folder

    options = ReadOptions(
        source=args.source,
        images=args.images,
        labels=args.labels,
        names=_split_list(args.names),
        split=args.split,
        domains=_split_list(args.domains),
        splits=_split_list(args.splits),
        prefer=args.prefer,
        variant=args.variant,
    )
    return load_folder(args.format, args.path, options)


def _split_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def summarize(records: list) -> list[str]:
    """Summary lines: images, cells per unified type, per domain, attribute coverage."""
    cells = sum(len(r) for r in records)
    lines = [f"images: {len(records)} ({sum(1 for r in records if len(r))} with cells), cells: {cells}"]
    types = Counter(t for r in records for t in r.cell_types)
    if types:
        lines.append("cells per type:")
        lines += [f"  {name:<24} {count}" for name, count in types.most_common()]
    domains: dict[str, list[int]] = {}
    for rec in records:
        key = " ".join(p for p in (rec.domain.name, rec.domain.split) if p)
        counts = domains.setdefault(key, [0, 0])
        counts[0] += 1
        counts[1] += len(rec)
    if domains:
        lines.append("domains:")
        lines += [f"  {name:<24} {n} images, {c} cells" for name, (n, c) in sorted(domains.items())]
    coverage: dict[str, Counter] = {}
    for rec in records:
        for name, values in rec.attributes.items():
            coverage.setdefault(name, Counter()).update(values)
    if coverage:
        lines.append("attributes (cells with a known value / all cells):")
        for name, values in coverage.items():
            known = {v: n for v, n in values.most_common() if v != "unknown"}
            shown = ", ".join(f"{v} {n}" for v, n in known.items()) or "none known"
            lines.append(f"  {name:<40} {sum(known.values())}/{cells}: {shown}")
    else:
        lines.append("attributes: none")
    return lines


def _print_issues(issues: list) -> None:
    print(f"issues: {len(issues)}")
    for issue in issues:
        print(f"  {issue}")


def run_inspect(args: argparse.Namespace) -> int:
    """Load, print the summary and every issue; 1 when there were issues."""
    result = _load(args)
    print("\n".join(summarize(result.records)))
    _print_issues(result.issues)
    return 1 if result.issues else 0


def run_convert(args: argparse.Namespace) -> int:
    """Load, write in the target format, print what was written and every issue."""
    from smearscope.datasets.formats.convert import write_folder

    source_folder = (args.path.parent if args.path.is_file() else args.path).resolve()
    out = args.out.resolve()
    if out == source_folder or source_folder in out.parents:
        raise ValueError(f"{args.out}: the output folder must not be inside the input folder {source_folder}")
    loaded = _load(args)
    written = write_folder(args.to, loaded.records, args.out, yolo_variant=args.to_variant, domain=args.domain)
    print(f"read {len(loaded.records)} images as {args.format}; wrote {len(written.records)} as {args.to} to {args.out}")
    print("\n".join(summarize(written.records)))
    issues = loaded.issues + written.issues
    _print_issues(issues)
    return 1 if issues else 0
