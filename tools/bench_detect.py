"""Whole-capture WBC detection: smearscope's tiled runner against SAHI, a plain ultralytics
predict on the whole image, and the bare network forward over the same tiles.

Run::

    python -m smearscope.tools.bench_detect --weights best.pt [--size 6000x4000]
        [--magnification 40X] [--tile 160] [--overlap 64] [--batch 8] [--seed 0]
        [--rounds 3] [--out bench.json] [--markdown bench.md] [--methods ...] [--full-res]

One seeded phantom capture (``datasets.phantom.render_capture``) with known white cells is
analysed by every method with the same weights, network input size, tile size, overlap,
batch size and confidence threshold:

- ``smearscope-torch`` / ``smearscope-onnx``: ``detect.infer.detect_capture`` with
  ``detect.yolo_predict.load_predictor`` (the ONNX model is exported into the work folder);
- ``sahi``: SAHI's ``get_sliced_prediction`` with its ultralytics wrapper, the same slices
  (slice = tile, overlap ratio = overlap / tile) and batch size, its default merging
  (GREEDYNMM, IOS 0.5), without its extra whole-image pass (``perform_standard_pred=False``);
- ``whole-resized``: ultralytics ``predict`` on the whole capture shrunk to ``imgsz``;
  ``whole-full`` (``--full-res``): the whole capture at full resolution;
- ``forward``: only the network as ultralytics' predictor runs it (fused), on float
  tensors of the same tiles made beforehand (no reading, pre-processing, box decoding or
  merging): the ceiling for the torch methods.

Each method runs in its own process (so peak memory does not mix), with 2 torch / ONNX
Runtime threads (``--threads``) and ``OMP_WAIT_POLICY=PASSIVE`` unless set. A timed run is
one call on the whole in-memory capture after a warm-up; model loading is not timed. With
``--rounds N`` the methods run N times, interleaved, and each keeps its best wall time and
its least CPU time (on a shared machine CPU seconds vary less than wall seconds). Megapixels
per second count capture pixels. Peak RSS is the process's high-water resident set
(``VmHWM``), which includes the libraries and the capture (3 bytes per pixel).

AP50: class-agnostic average precision at IoU 0.5 of the boxes against the white cells of
the ground truth (artifacts are not targets), COCO-style greedy matching in score order,
all-point interpolated precision, over every box a method returns (all at or above the
shared ``--conf``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from smearscope.datasets.io import read_json, write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from smearscope.datasets.phantom.domains import DomainSpec

METHODS = ("smearscope-torch", "smearscope-onnx", "sahi", "whole-resized", "whole-full", "forward")
DEFAULT_METHODS = ("smearscope-torch", "smearscope-onnx", "sahi", "whole-resized", "forward")
OVERLAP_UM = 20.0  # default overlap: the width of a large white cell
YOLO_IOU = 0.7  # per-tile NMS IoU, ultralytics' default (SAHI does not change it)
AP_IOU = 0.5
FULL_RES_MAX_MP = 4.0  # whole-full with yolo11n: 4 MP took about 0.5 GB above the baseline, 24 MP over 20 GB


# ---------------------------------------------------------------- accuracy


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) against every box of ``b`` (M, 4), xyxy."""
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def average_precision(boxes: np.ndarray, scores: np.ndarray, truth: np.ndarray, iou: float = AP_IOU) -> dict:
    """AP at ``iou`` (all-point interpolation) with recall and precision over all ``boxes``.

    Detections are taken by descending score; each matches the unmatched ground-truth box
    it overlaps most, if that IoU is at least ``iou`` (COCO's rule).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 4)
    if len(truth) == 0:
        raise ValueError("average_precision: the ground truth holds no box")
    order = np.argsort(-scores, kind="stable")
    overlaps = iou_matrix(boxes[order], truth)
    matched = np.zeros(len(truth), dtype=bool)
    hits = np.zeros(len(order), dtype=bool)
    for i in range(len(order)):
        candidates = np.where(matched, -1.0, overlaps[i])
        j = int(np.argmax(candidates)) if len(truth) else -1
        if candidates[j] >= iou:
            matched[j] = hits[i] = True
    true_pos = np.cumsum(hits)
    recall = true_pos / len(truth)
    precision = true_pos / np.arange(1, len(order) + 1)
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(order) else precision
    ap = float(np.sum(np.diff(np.concatenate([[0.0], recall])) * envelope))
    return {
        "ap50": round(ap, 4),
        "recall": round(float(recall[-1]) if len(order) else 0.0, 4),
        "precision": round(float(precision[-1]) if len(order) else 0.0, 4),
        "boxes": int(len(order)),
        "cells": int(len(truth)),
    }


# ---------------------------------------------------------------- workers (one process each)


def peak_rss_mb() -> float:
    """This process's peak resident set in MB: ``VmHWM`` on Linux (``ru_maxrss`` survives
    fork and exec, so it would report the parent's peak), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    divisor = 2**20 if sys.platform == "darwin" else 2**10  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / divisor


def _torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _whole_image_for(image: np.ndarray, scale: float) -> np.ndarray:
    """The capture at the detector's scale (itself when ``scale`` is 1)."""
    from smearscope.detect.capture import resize_rgb
    from smearscope.detect.infer import working_size

    if scale == 1.0:
        return image
    width, height = working_size(image.shape[1], image.shape[0], scale)
    return resize_rgb(image, width, height)


def _run_smearscope(job: dict, image: np.ndarray, backend: str) -> tuple[dict, Callable]:
    from smearscope.detect.infer import detect_capture
    from smearscope.detect.yolo_predict import load_predictor

    weights = job["onnx"] if backend == "onnx" else job["weights"]
    predictor = load_predictor(weights, backend=backend, imgsz=job["imgsz"], conf=job["conf"], iou=YOLO_IOU,
                               batch=job["batch"], threads=job["threads"])
    warm = image[: job["tile"], : job["tile"] * 2]
    detect_capture(warm, predictor, tile=job["tile"], overlap=job["overlap"], batch=job["batch"], conf=job["conf"])

    def run() -> dict:
        found = detect_capture(image, predictor, tile=job["tile"], overlap=job["overlap"], batch=job["batch"],
                               scale=job["scale"], conf=job["conf"])
        return {"xyxy": found.xyxy, "scores": found.scores, "class_ids": found.class_ids}

    return {"tiles": job["tiles"]}, run


def _run_sahi(job: dict, image: np.ndarray) -> tuple[dict, Callable]:
    from smearscope.datasets.runtime import prepare_ultralytics

    prepare_ultralytics()
    from sahi import AutoDetectionModel
    from sahi.predict import get_sliced_prediction
    from sahi.slicing import get_slice_bboxes

    model = AutoDetectionModel.from_pretrained(model_type="ultralytics", model_path=job["weights"],
                                               confidence_threshold=job["conf"], device="cpu",
                                               image_size=job["imgsz"])
    tile = job["tile"]
    ratio = (job["overlap"] + 0.5) / tile  # SAHI takes int(ratio * tile) pixels
    options = dict(detection_model=model, slice_height=tile, slice_width=tile, overlap_height_ratio=ratio,
                   overlap_width_ratio=ratio, perform_standard_pred=False, batch_size=job["batch"], verbose=0)
    get_sliced_prediction(np.ascontiguousarray(image[:tile, : tile * 2]), **options)
    _torch_threads(job["threads"])  # after ultralytics' device set-up, which leaves torch one thread

    def run() -> dict:
        work = _whole_image_for(image, job["scale"])
        predictions = get_sliced_prediction(work, **options).object_prediction_list
        xyxy = np.array([p.bbox.to_xyxy() for p in predictions], dtype=np.float64).reshape(-1, 4) / job["scale"]
        scores = np.array([p.score.value for p in predictions], dtype=np.float64)
        classes = np.array([p.category.id for p in predictions], dtype=np.int64)
        return {"xyxy": xyxy, "scores": scores, "class_ids": classes}

    work_w, work_h = round(image.shape[1] * job["scale"]), round(image.shape[0] * job["scale"])
    slices = get_slice_bboxes(image_height=work_h, image_width=work_w, slice_height=tile, slice_width=tile,
                              auto_slice_resolution=False, overlap_height_ratio=ratio, overlap_width_ratio=ratio)
    return {"tiles": len(slices)}, run


def _run_whole(job: dict, image: np.ndarray, full: bool) -> tuple[dict, Callable]:
    from smearscope.detect.yolo_env import import_yolo
    from smearscope.detect.yolo_predict import from_ultralytics

    model = import_yolo()(job["weights"], task="detect")
    height, width = round(image.shape[0] * job["scale"]), round(image.shape[1] * job["scale"])
    imgsz = math.ceil(max(width, height) / 32) * 32 if full else job["imgsz"]
    options = dict(imgsz=imgsz, conf=job["conf"], iou=YOLO_IOU, device="cpu", verbose=False)
    model.predict(np.full((64, 64, 3), 114, np.uint8), **options)
    _torch_threads(job["threads"])

    def run() -> dict:
        work = _whole_image_for(image, job["scale"]) if full else image
        xyxy, scores, classes = from_ultralytics(model.predict(np.ascontiguousarray(work[..., ::-1]), **options))[0]
        if full:
            xyxy = xyxy / job["scale"]
        return {"xyxy": xyxy, "scores": scores, "class_ids": classes}

    return {"tiles": 1, "imgsz": imgsz}, run


def _run_forward(job: dict, image: np.ndarray) -> tuple[dict, Callable]:
    import torch

    from smearscope.detect.capture import ArrayCapture
    from smearscope.detect.infer import plan_tiles, read_tile
    from smearscope.detect.yolo_env import import_yolo

    model = import_yolo()(job["weights"], task="detect")
    model.predict(np.full((job["imgsz"], job["imgsz"], 3), 114, np.uint8), imgsz=job["imgsz"], device="cpu",
                  verbose=False)
    net = model.predictor.model  # the fused network exactly as ultralytics' predictor runs it
    reader = ArrayCapture(image)
    plans = plan_tiles(reader.width, reader.height, job["tile"], job["overlap"], job["scale"])
    imgsz, batch = job["imgsz"], job["batch"]
    batches = []
    for start in range(0, len(plans), batch):
        canvases = np.full((len(plans[start:start + batch]), imgsz, imgsz, 3), 114, dtype=np.uint8)
        for k, plan in enumerate(plans[start:start + batch]):
            pixels = read_tile(reader, plan, job["tile"])
            canvases[k, : pixels.shape[0], : pixels.shape[1]] = pixels
        batches.append(torch.from_numpy(canvases).permute(0, 3, 1, 2).float().div(255.0).contiguous())
    _torch_threads(job["threads"])
    with torch.inference_mode():
        net(batches[0])

    def run() -> dict:
        with torch.inference_mode():
            for tensor in batches:
                net(tensor)
        return {}

    return {"tiles": len(plans)}, run


def run_worker(method: str, job_path: Path) -> int:
    """Run one method on the job's capture; write its timing, memory and boxes."""
    job = read_json(job_path)
    image = np.load(job["capture"])
    if method.startswith("smearscope-"):
        info, run = _run_smearscope(job, image, method.split("-", 1)[1])
    elif method == "sahi":
        info, run = _run_sahi(job, image)
    elif method in ("whole-resized", "whole-full"):
        info, run = _run_whole(job, image, full=method == "whole-full")
    elif method == "forward":
        info, run = _run_forward(job, image)
    else:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    rss_before = peak_rss_mb()
    started, cpu_started = time.perf_counter(), time.process_time()
    boxes = run()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    torch = sys.modules.get("torch")  # not imported by the ONNX backend, and not imported here
    result = {**info, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": peak_rss_mb(),
              "rss_before_mb": rss_before, "torch_threads": torch.get_num_threads() if torch else None}
    out = Path(job["results"]) / method
    if boxes:
        np.savez(out.with_suffix(".npz"), **boxes)
    write_json_atomic(out.with_suffix(".json"), result)
    return 0


# ---------------------------------------------------------------- driver


def capture_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 6000x4000, got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"size {text} is too small")
    return width, height


def default_overlap(tile: int, um_per_px: float) -> int:
    """``OVERLAP_UM`` in pixels at ``um_per_px`` (at most ``tile - 1``)."""
    return min(tile - 1, round(OVERLAP_UM / um_per_px))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m smearscope.tools.bench_detect",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True, help="YOLO .pt trained by smearscope (with its .json)")
    parser.add_argument("--size", type=capture_size, default=(6000, 4000), help="capture size WxH (default 6000x4000)")
    parser.add_argument("--magnification", default="40X", help="phantom objective (default 40X)")
    parser.add_argument("--microscope", default="H", help="phantom microscope H or L (default H)")
    parser.add_argument("--camera", default="C1", help="phantom camera C1 or C2 (default C1)")
    parser.add_argument("--tile", type=int, default=0, help="tile px at the detector scale (default: --imgsz)")
    parser.add_argument("--imgsz", type=int, default=0,
                        help="network input px for every method (default: the weights' imgsz); a fully "
                             "convolutional detector keeps its scale on larger inputs")
    parser.add_argument("--overlap", type=int, default=-1,
                        help=f"tile overlap px (default: {OVERLAP_UM:g} um at the weights' scale)")
    parser.add_argument("--batch", type=int, default=8, help="tiles per forward pass (default 8)")
    parser.add_argument("--conf", type=float, default=0.25, help="confidence threshold for every method (default 0.25)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per method (default 2)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every method this many times, interleaved; the best time counts (default 1)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=None,
                        help=f"methods to run (default: {' '.join(DEFAULT_METHODS)}, plus whole-full with --full-res)")
    parser.add_argument("--full-res", action="store_true", help="also run ultralytics on the whole full-resolution capture")
    parser.add_argument("--full-res-max-mp", type=float, default=FULL_RES_MAX_MP,
                        help=f"skip the full-resolution run above this many megapixels (default {FULL_RES_MAX_MP:g}): "
                             "its memory grows with the image")
    parser.add_argument("--work", type=Path, default=None, help="folder for the capture and per-method files (default: temporary)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--job", type=Path, help=argparse.SUPPRESS)
    return parser


def _onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _sahi_available() -> bool:
    try:
        import sahi  # noqa: F401
    except ImportError:
        return False
    return True


def _run_method(method: str, job_path: Path) -> dict | None:
    """Run ``method`` in a fresh process; its result, or None (with the reason printed)."""
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    job = read_json(job_path)
    command = [sys.executable, "-m", "smearscope.tools.bench_detect", "--weights", job["weights"], "--worker", method,
               "--job", str(job_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    results = Path(job["results"])
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"{method}: failed ({tail})", file=sys.stderr)
        return None
    return read_json(results / f"{method}.json")


def _summarise(method: str, results: list[dict], accuracy: dict | None, megapixels: float) -> dict:
    """One method's row: its best wall and CPU time over the rounds, its largest peak RSS."""
    seconds = min(r["seconds"] for r in results)
    cpu_seconds = min(r["cpu_seconds"] for r in results)
    return {
        "method": method, "tiles": results[0]["tiles"], "rounds": len(results),
        "seconds": round(seconds, 3), "mp_per_s": round(megapixels / seconds, 4),
        "cpu_seconds": round(cpu_seconds, 3), "mp_per_cpu_s": round(megapixels / cpu_seconds, 4),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in results), 1),
        "rss_before_mb": round(max(r["rss_before_mb"] for r in results), 1),
        "all_seconds": [round(r["seconds"], 3) for r in results], "accuracy": accuracy,
    }


def markdown_table(rows: list[dict], summary: dict) -> str:
    """The results as a markdown table, with the throughput ratios below it."""
    lines = ["| method | tiles | wall s | MP/s | CPU s | MP/CPU-s | peak RSS MB | AP50 | recall | precision | boxes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        acc = row.get("accuracy") or {}
        lines.append("| {} | {} | {:.2f} | {:.3f} | {:.2f} | {:.3f} | {:.0f} | {} | {} | {} | {} |".format(
            row["method"], row["tiles"], row["seconds"], row["mp_per_s"], row["cpu_seconds"], row["mp_per_cpu_s"],
            row["peak_rss_mb"], acc.get("ap50", "-"), acc.get("recall", "-"), acc.get("precision", "-"),
            acc.get("boxes", "-")))
    lines.append("")
    for key, value in summary.items():
        if value is not None:
            lines.append(f"- {key}: {value:.2f}")
    return "\n".join(lines) + "\n"


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    os.replace(tmp, path)


def _phantom_capture(work: Path, seed: int, width: int, height: int, domain: "DomainSpec") -> tuple[Path, np.ndarray]:
    """The seeded phantom capture as a ``.npy`` in ``work`` (rendered once, then reused) and
    the boxes of its white cells (artifacts are not detection targets)."""
    from smearscope.datasets.phantom import render_capture
    from smearscope.datasets.schema import taxonomy

    stem = work / f"phantom_{seed}_{width}x{height}_{domain.name}"
    capture, truth_path = stem.with_suffix(".npy"), stem.with_name(stem.name + "_wbc_boxes.npy")
    if not (capture.is_file() and truth_path.is_file()):
        print(f"rendering a {width}x{height} {domain.name} phantom capture ...", file=sys.stderr, flush=True)
        image, record = render_capture(seed, width, height, domain.magnification, domain.microscope, domain.camera)
        is_wbc = taxonomy().is_wbc
        _save_npy_atomic(capture, image)
        _save_npy_atomic(truth_path, record.boxes_xyxy[[is_wbc.get(t, False) for t in record.cell_types]].reshape(-1, 4))
    return capture, np.load(truth_path)


def run_benchmark(args: argparse.Namespace) -> dict:
    """Render the capture, run every method in its own process, score and tabulate."""
    from smearscope.datasets.phantom.domains import domain_spec
    from smearscope.detect.infer import plan_tiles, working_size
    from smearscope.detect.scale import resample_factor
    from smearscope.detect.yolo_meta import read_detector_metadata

    for name in ("rounds", "batch", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)}")
    weights = args.weights.resolve()
    metadata = read_detector_metadata(weights)
    imgsz = args.imgsz or metadata.imgsz
    tile = args.tile or imgsz
    if tile > imgsz:
        raise ValueError(f"--tile {tile} is larger than the network input size {imgsz} (see --imgsz)")
    overlap = args.overlap if args.overlap >= 0 else default_overlap(tile, metadata.um_per_px)
    domain = domain_spec(f"{args.microscope}_{args.magnification}_{args.camera}")
    scale = resample_factor(domain.um_per_px, metadata.um_per_px)
    methods = list(args.methods or [*DEFAULT_METHODS, *(["whole-full"] if args.full_res else [])])
    work_mp = math.prod(working_size(*args.size, scale)) / 1e6
    if "whole-full" in methods and work_mp > args.full_res_max_mp:
        print(f"whole-full: skipped ({work_mp:.1f} MP at the detector's scale is above --full-res-max-mp "
              f"{args.full_res_max_mp:g}; one full-resolution pass grew past 20 GB at 24 MP)", file=sys.stderr)
        methods.remove("whole-full")
    if "smearscope-onnx" in methods and not _onnx_available():
        print("smearscope-onnx: skipped (onnxruntime is not installed)", file=sys.stderr)
        methods.remove("smearscope-onnx")
    if "sahi" in methods and not _sahi_available():
        print("sahi: skipped (pip install sahi)", file=sys.stderr)
        methods.remove("sahi")

    width, height = args.size
    with tempfile.TemporaryDirectory(prefix="bench-detect-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        (work / "results").mkdir(parents=True, exist_ok=True)
        capture, truth = _phantom_capture(work, args.seed, width, height, domain)
        onnx_path = None
        if "smearscope-onnx" in methods:
            from smearscope.detect.yolo_predict import export_detector

            onnx_path = export_detector(weights, work / f"{weights.stem}.onnx", imgsz=imgsz)
        job = {"capture": str(capture), "results": str(work / "results"), "weights": str(weights),
               "onnx": str(onnx_path) if onnx_path else None, "imgsz": imgsz, "tile": tile,
               "overlap": overlap, "batch": args.batch, "conf": args.conf, "scale": scale, "threads": args.threads,
               "tiles": len(plan_tiles(width, height, tile, overlap, scale))}
        job_path = write_json_atomic(work / "job.json", job)
        wbc_ids = [i for i, name in enumerate(metadata.class_names) if name == "wbc"] or [0]
        runs: dict[str, list[dict]] = {method: [] for method in methods}
        accuracy: dict[str, dict] = {}
        for round_index in range(args.rounds):
            for method in methods:
                print(f"round {round_index + 1}/{args.rounds}: {method} ...", file=sys.stderr, flush=True)
                result = _run_method(method, job_path)
                if result is None:
                    continue
                runs[method].append(result)
                boxes_file = work / "results" / f"{method}.npz"
                if method not in accuracy and boxes_file.is_file():
                    found = np.load(boxes_file)
                    keep = np.isin(found["class_ids"], wbc_ids)
                    accuracy[method] = average_precision(found["xyxy"][keep], found["scores"][keep], truth)
        rows = [_summarise(method, results, accuracy.get(method), width * height / 1e6)
                for method, results in runs.items() if results]

    def ratio(a: str, b: str, key: str) -> float | None:
        found = {row["method"]: row[key] for row in rows}
        return round(found[a] / found[b], 3) if a in found and b in found else None

    summary = {f"{a}_over_{b}".replace("smearscope-", "").replace("-", "_") + suffix: ratio(a, b, key)
               for a, b in (("smearscope-torch", "forward"), ("smearscope-torch", "sahi"), ("smearscope-onnx", "sahi"))
               for key, suffix in (("mp_per_s", ""), ("mp_per_cpu_s", "_cpu"))}
    report = {
        "capture": {"width": width, "height": height, "megapixels": width * height / 1e6, "seed": args.seed,
                    "domain": domain.name, "um_per_px": domain.um_per_px, "wbcs": int(len(truth))},
        "weights": str(weights), "detector": {"imgsz": metadata.imgsz, "um_per_px": metadata.um_per_px,
                                              "class_names": metadata.class_names},
        "settings": {**{k: job[k] for k in ("imgsz", "tile", "overlap", "batch", "conf", "scale", "threads", "tiles")},
                     "rounds": args.rounds},
        "results": rows, "summary": summary,
    }
    report["markdown"] = markdown_table(rows, summary)
    return report


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        return run_worker(args.worker, args.job)
    try:
        report = run_benchmark(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: report[k] for k in ("capture", "detector", "settings", "summary")}, indent=1))
    print(report["markdown"])
    if args.out:
        write_json_atomic(args.out, report)
    if args.markdown:
        write_text_atomic(args.markdown, report["markdown"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
