"""Peak memory of whole-capture detection on a very large tiled TIFF (default 20000 x 20000 px).

Run::

    python -m smearscope.tools.bench_memory --weights best.pt [--size 20000x20000]
        [--magnification 40X] [--seed 0] [--work DIR] [--capture scan.tif] [--limit-mb 2048]

Without ``--capture``, a seeded phantom capture is written as a tiled, zlib-compressed TIFF
(``datasets.phantom.save_capture``, rendered strip by strip) into ``--work`` and reused on
later runs. A fresh process then opens it with ``detect.capture.open_capture`` and runs
``detect.infer.detect_capture`` with ``detect.yolo_predict.load_predictor`` over it; its peak
resident set (``VmHWM``) is printed beside the resident set it had once the model was
loaded, with the time, tile count and detections. Exit status 1 when the peak exceeds
``--limit-mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from smearscope.datasets.io import read_json, write_json_atomic
from smearscope.tools.bench_detect import capture_size, default_overlap, peak_rss_mb

LIMIT_MB = 2048


def render_tiff(work: Path, seed: int, width: int, height: int, magnification: str, microscope: str,
                camera: str) -> Path:
    """The phantom capture as a tiled TIFF in ``work`` (written once, then reused)."""
    from smearscope.datasets.phantom import save_capture

    path = work / f"phantom_{seed}_{width}x{height}_{microscope}_{magnification}_{camera}.tif"
    if not path.is_file():
        save_capture(path, seed, width, height, magnification, microscope, camera, progress=True)
    return path


def run_worker(job_path: Path) -> int:
    """Analyse the job's capture and write the measurements beside the job file."""
    from smearscope.detect.capture import open_capture
    from smearscope.detect.infer import detect_capture, plan_tiles
    from smearscope.detect.yolo_predict import load_predictor

    job = read_json(job_path)
    predictor = load_predictor(job["weights"], backend=job["backend"], conf=job["conf"], batch=job["batch"],
                               threads=job["threads"])
    with open_capture(job["capture"]) as reader:
        tile = job["tile"] or predictor.imgsz
        overlap = job["overlap"] if job["overlap"] >= 0 else default_overlap(tile, predictor.metadata.um_per_px)
        scale = job["um_per_px"] / predictor.metadata.um_per_px if job["um_per_px"] else 1.0
        tiles = len(plan_tiles(reader.width, reader.height, tile, overlap, scale))
        rss_loaded = peak_rss_mb()
        marks = [max(1, tiles * k // 20) for k in range(1, 21)]

        def progress(done: int, total: int) -> None:
            if marks and done >= marks[0]:
                while marks and done >= marks[0]:
                    marks.pop(0)
                print(f"  {done}/{total} tiles, peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr, flush=True)

        started = time.perf_counter()
        found = detect_capture(reader, predictor, tile=tile, overlap=overlap, batch=job["batch"], scale=scale,
                               conf=job["conf"], progress=progress)
        seconds = time.perf_counter() - started
        size = (reader.width, reader.height)
    write_json_atomic(job_path.with_name("result.json"), {
        "width": size[0], "height": size[1], "tile": tile, "overlap": overlap, "scale": scale, "tiles": tiles,
        "detections": len(found), "seconds": round(seconds, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_after_model_load_mb": round(rss_loaded, 1), "backend": job["backend"], "batch": job["batch"],
    })
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m smearscope.tools.bench_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, required=True, help="YOLO .pt or .onnx trained by smearscope")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="inference backend (default torch)")
    parser.add_argument("--capture", type=Path, default=None, help="analyse this capture instead of a phantom one")
    parser.add_argument("--um-per-px", type=float, default=0.0,
                        help="scale of --capture (default: the phantom domain's, or the detector's for --capture)")
    parser.add_argument("--size", type=capture_size, default=(20000, 20000), help="phantom size WxH (default 20000x20000)")
    parser.add_argument("--magnification", default="40X", help="phantom objective (default 40X)")
    parser.add_argument("--microscope", default="H", help="phantom microscope (default H)")
    parser.add_argument("--camera", default="C1", help="phantom camera (default C1)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument("--tile", type=int, default=0, help="tile px (default: the weights' imgsz)")
    parser.add_argument("--overlap", type=int, default=-1, help="tile overlap px (default: 20 um at the weights' scale)")
    parser.add_argument("--batch", type=int, default=8, help="tiles per forward pass (default 8)")
    parser.add_argument("--conf", type=float, default=0.25, help="confidence threshold (default 0.25)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--work", type=Path, default=Path("bench-memory"), help="folder for the TIFF and results")
    parser.add_argument("--limit-mb", type=float, default=LIMIT_MB, help=f"peak RSS target (default {LIMIT_MB})")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        return run_worker(args.worker)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    um_per_px = args.um_per_px
    try:
        if args.capture is None:
            from smearscope.datasets.phantom.domains import domain_spec

            domain = domain_spec(f"{args.microscope}_{args.magnification}_{args.camera}")
            started = time.perf_counter()
            capture = render_tiff(work, args.seed, *args.size, domain.magnification, domain.microscope, domain.camera)
            print(f"capture {capture} ready in {time.perf_counter() - started:.0f} s", file=sys.stderr)
            um_per_px = um_per_px or domain.um_per_px
        else:
            capture = args.capture.resolve()
            if not capture.is_file():
                raise ValueError(f"{capture}: capture file not found")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    job = {"capture": str(capture), "weights": str(args.weights.resolve()), "backend": args.backend,
           "um_per_px": um_per_px, "tile": args.tile, "overlap": args.overlap, "batch": args.batch,
           "conf": args.conf, "threads": args.threads}
    job_path = write_json_atomic(work / "job.json", job)
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    done = subprocess.run([sys.executable, "-m", "smearscope.tools.bench_memory", "--weights", job["weights"],
                           "--worker", str(job_path)], env=env)
    if done.returncode != 0:
        print("error: the analysis process failed", file=sys.stderr)
        return 2
    result = {**read_json(work / "result.json"), "capture": str(capture), "limit_mb": args.limit_mb}
    result["within_limit"] = result["peak_rss_mb"] <= args.limit_mb
    print(json.dumps(result, indent=1))
    print(f"peak RSS {result['peak_rss_mb']:.0f} MB for a {result['width']}x{result['height']} capture "
          f"({result['width'] * result['height'] / 1e6:.0f} MP): "
          f"{'within' if result['within_limit'] else 'OVER'} the {args.limit_mb:.0f} MB target")
    if args.out:
        write_json_atomic(args.out, result)
    return 0 if result["within_limit"] else 1


if __name__ == "__main__":
    sys.exit(main())
