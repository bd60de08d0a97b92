"""``smearscope synth`` and ``smearscope contact-sheet``: synthetic smears with known ground truth."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

_CAPTURE_RE = re.compile(r"^(\d+)[xX](\d+)$")


def _capture_size(text: str) -> tuple[int, int]:
    match = _CAPTURE_RE.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"capture size {text!r} is not of the form WIDTHxHEIGHT, e.g. 6000x4000")
    return int(match[1]), int(match[2])


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``synth`` and ``contact-sheet`` subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    synth = subparsers.add_parser(
        "synth",
        help="generate a synthetic (phantom) data set in the LeukemiaAttri layout",
        description="Draw seeded synthetic blood-smear fields with known ground truth: the 14\n"
        "LeukemiaAttri classes, their 7 attributes, red cells, platelets and debris, rendered\n"
        "through each microscope (H/L), magnification (100X/40X/10X) and camera (C1/C2).\n"
        "Every field is rendered in every requested domain at the same slide position.\n"
        "Writes OUT/LeukemiaAttri_Dataset/<Domain>/{images,json_labels,txt_labels}/ and,\n"
        "with --capture, one large capture with COCO ground truth under OUT/capture/.\n"
        "The same seed and arguments give the same files.",
        formatter_class=formatter,
    )
    synth.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    synth.add_argument("--fields", type=int, default=20, metavar="N",
                       help="slide regions; each is rendered in every domain (default 20)")
    synth.add_argument("--domains", default="all", metavar="LIST",
                       help="comma-separated domains such as H_100X_C1,L_40X_C2 (default: all 12)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--size", type=int, default=640, metavar="PX", help="field side in pixels (default 640)")
    synth.add_argument("--test-fraction", type=float, default=0.2, metavar="F",
                       help="share of fields (whole patients) in the test split (default 0.2)")
    synth.add_argument("--capture", type=_capture_size, metavar="WxH",
                       help="also render one capture of this size, e.g. 6000x4000 (PNG; tiled TIFF above 64 Mpx)")
    synth.add_argument("--capture-domain", default="H_40X_C1", metavar="DOMAIN",
                       help="microscope_magnification_camera of the capture (default H_40X_C1)")
    synth.set_defaults(run=run_synth)

    sheet = subparsers.add_parser(
        "contact-sheet",
        help="draw one phantom cell per LeukemiaAttri class in every domain, as one PNG",
        description="One row per LeukemiaAttri class (its most typical attributes), one column per\n"
        "domain; each tile shows the same 26 um square of one slide, so the columns compare\n"
        "microscopes, magnifications and cameras on the same cell.",
        formatter_class=formatter,
    )
    sheet.add_argument("--out", required=True, type=Path, metavar="PNG", help="output PNG file")
    sheet.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sheet.add_argument("--domains", default="all", metavar="LIST", help="comma-separated domains (default: all 12)")
    sheet.add_argument("--tile", type=int, default=112, metavar="PX", help="tile side in pixels (default 112)")
    sheet.set_defaults(run=run_contact_sheet)


def run_synth(args: argparse.Namespace) -> int:
    """Write the LeukemiaAttri-layout phantom set (and optionally one capture)."""
    from smearscope.datasets.phantom import generate_leukemiaattri, save_capture
    from smearscope.datasets.phantom.capture import PNG_LIMIT_PX
    from smearscope.datasets.phantom.domains import domain_spec

    capture_domain = domain_spec(args.capture_domain) if args.capture else None
    root = generate_leukemiaattri(args.out, args.fields, args.domains, seed=args.seed, test_fraction=args.test_fraction,
                                  size=args.size, progress=True)
    print(f"phantom data set: {root}")
    if args.capture:
        width, height = args.capture
        suffix = ".png" if width * height <= PNG_LIMIT_PX else ".tif"
        image, labels = save_capture(
            args.out / "capture" / f"phantom_capture_{capture_domain.name}{suffix}", args.seed, width, height,
            capture_domain.magnification, capture_domain.microscope, capture_domain.camera, progress=True)
        print(f"capture: {image}\nground truth: {labels}")
    return 0


def run_contact_sheet(args: argparse.Namespace) -> int:
    """Render the contact sheet PNG."""
    import cv2

    from smearscope.datasets.io import write_bytes_atomic
    from smearscope.datasets.phantom import contact_sheet

    if args.out.suffix.lower() != ".png":
        raise ValueError(f"{args.out}: the contact sheet is written as PNG; give a .png path")
    if args.tile < 32:
        raise ValueError(f"tile size {args.tile} px is too small (at least 32)")
    sheet = contact_sheet(args.seed, args.domains, tile=args.tile, progress=True)
    ok, data = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{args.out}: PNG encoding failed")
    write_bytes_atomic(args.out, data.tobytes())
    print(f"contact sheet: {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")
    return 0
