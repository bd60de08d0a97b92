"""The main job: detect every WBC in a capture, type and describe it, explain it, count.

``make_capture_job(options)`` loads the detector and the cell model once and returns
``analyze_one(capture, folder) -> dict``, which writes one capture's outputs into ``folder``;
the local and Ray engines run it over a batch. Cells are cropped, typed and explained a chunk
at a time (``call_cells``), so a stitched slide with tens of thousands of cells fits in memory.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from smearscope.datasets.records import Domain, ImageRecord

if TYPE_CHECKING:
    from smearscope.attributes.model import CellNet
    from smearscope.detect.capture import CaptureReader
    from smearscope.detect.detections import Detections
    from smearscope.tools.results import CellResult

MIN_RBC_CONFIDENCE = 0.05  # below this the red-cell estimate was seen to be off by up to 30%
ASSUMED_MAGNIFICATION = "100X"  # the objective of manual differentials, when nothing else is known
OVERVIEW_MAX_SIDE = 4096
SETTINGS_FILE = "settings.json"
OVERVIEW_STRIP_PIXELS = 16_000_000  # pixels read at once while building the overview
CELL_CHUNK = 1024  # cells cropped, typed and explained at once: memory stays bounded on huge slides
PREDICT_BATCH = 64  # crops the cell model sees at once
MIN_FOCUS_SIDE = 8  # pixels: the smallest crop the focus measure looks at


@dataclass
class AnalyzeOptions:
    """How to analyse captures; ``None`` weights mean the bundled default models."""

    detector: str | None = None
    cells: str | None = None
    backend: str = "torch"
    um_per_px: float | None = None
    magnification: str | None = None
    camera: str | None = None
    overlap: int = 96
    batch: int = 8
    conf: float = 0.25
    iou: float = 0.5
    focus_threshold: float = 8.0  # sharp phantom and real fields 10-1200 at 100X-10X; a 6 px blur gives 2-6
    report: bool = True


@dataclass
class ScaleDecision:
    """The capture's micrometres per pixel and where that figure came from."""

    um_per_px: float
    source: str
    confidence: float


def decide_scale(reader, options: AnalyzeOptions) -> ScaleDecision:
    """Scale given by the user, from a preset, from a sidecar JSON, or from red cells (else assumed)."""
    from smearscope.detect.scale import estimate_um_per_px, scale_from_preset

    if options.um_per_px is not None:
        if not options.um_per_px > 0:
            raise ValueError(f"--um-per-px must be positive, got {options.um_per_px}")
        return ScaleDecision(float(options.um_per_px), "given", 1.0)
    if options.magnification:
        return ScaleDecision(scale_from_preset(options.magnification, options.camera), "preset", 1.0)
    sidecar = sidecar_scale(Path(reader.path))
    if sidecar is not None:
        return ScaleDecision(sidecar, "sidecar", 1.0)
    try:
        estimate = estimate_um_per_px(reader)
        if estimate.confidence >= MIN_RBC_CONFIDENCE:
            return ScaleDecision(float(estimate.um_per_px), f"estimated from red cells ({estimate.method})",
                                 float(estimate.confidence))
    except ValueError:
        pass
    return ScaleDecision(scale_from_preset(ASSUMED_MAGNIFICATION), f"assumed {ASSUMED_MAGNIFICATION}", 0.0)


def sidecar_scale(capture: Path) -> float | None:
    """``um_per_px`` from a JSON file beside the capture (``<capture name>.json``), if any."""
    from smearscope.datasets.io import read_json

    path = capture.with_name(capture.name + ".json")
    if not path.is_file():
        return None
    data = read_json(path)
    value = data.get("um_per_px") if isinstance(data, dict) else None
    if not isinstance(value, (int, float)) or not 0 < value < 100:
        raise ValueError(f"{path}: needs a positive number under 'um_per_px'")
    return float(value)


def sharpness(crops: np.ndarray, um_per_px: float, crop_um: float) -> list[float]:
    """Variance of the Laplacian of each cell crop (``crop_um`` across), at the capture's own
    resolution: crops that were enlarged from a capture coarser than the crop scale (40X, 10X)
    are first brought back to the capture's pixel size, so that a sharp low-magnification
    capture does not read as blurred (enlarging alone divides the figure by up to 1000)."""
    import cv2

    native = max(MIN_FOCUS_SIDE, int(round(crop_um / um_per_px)))
    values = []
    for crop in crops:
        if native < crop.shape[0]:
            crop = cv2.resize(crop, (native, native), interpolation=cv2.INTER_AREA)
        values.append(float(cv2.Laplacian(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()))
    return values


@dataclass
class CellCalls:
    """What the cell stage keeps of a capture: its cells, its focus and the gallery's thumbnails."""

    cells: list[CellResult]  # in detection order
    focus: float | None  # median sharpness of the cells; None without cells
    thumbnails: dict[int, bytes]  # JPEG of each cell the report's gallery shows, by cell index


def call_cells(
    reader: CaptureReader,
    detections: Detections,
    model: CellNet,
    heads: dict[str, list[str]],
    um_per_px: float,
    chunk_size: int = CELL_CHUNK,
    predict_batch: int = PREDICT_BATCH,
    gallery_per_type: int | None = None,
) -> CellCalls:
    """Crop, type and explain the detected cells, reading ``chunk_size`` of them at a time.

    Only the small per-cell results, one sharpness figure per cell and the thumbnails the
    gallery may show (``gallery_per_type`` per type, default the report's) outlive a chunk,
    so memory stays bounded however many cells a slide holds. The model always sees the same
    batches of ``predict_batch`` crops (the few crops past the last full batch of a chunk wait
    for the next chunk), so the results are the same, bit for bit, for every ``chunk_size``.
    """
    from smearscope.attributes.explain import explain_cells
    from smearscope.attributes.predict import predict_crops
    from smearscope.tools.report_html import GALLERY_PER_TYPE, GalleryThumbnails
    from smearscope.tools.results import CellResult

    if chunk_size < 1 or predict_batch < 1:
        raise ValueError(f"chunk_size and predict_batch must be at least 1, got {chunk_size} and {predict_batch}")
    cells, focus_values = [], []
    gallery = GalleryThumbnails(GALLERY_PER_TYPE if gallery_per_type is None else gallery_per_type)
    size = model.config.input_size
    waiting, waiting_boxes = np.zeros((0, size, size, 3), np.uint8), []
    for start in range(0, len(detections), chunk_size):
        chunk = detections.select(np.arange(start, min(start + chunk_size, len(detections))))
        crops, kept, _ = read_cell_crops(reader, chunk.xyxy, model, um_per_px)
        focus_values.extend(sharpness(crops, um_per_px, model.config.crop_um))
        crops = np.concatenate([waiting, crops]) if len(waiting) else crops
        boxes = waiting_boxes + [(tuple(float(v) for v in chunk.xyxy[i]), float(chunk.scores[i])) for i in kept]
        last = start + chunk_size >= len(detections)
        ready = len(crops) if last else len(crops) - len(crops) % predict_batch
        explanations = explain_cells(predict_crops(model, crops[:ready], predict_batch), heads)
        for crop, (box, score), explanation in zip(crops[:ready], boxes[:ready], explanations):
            cell = CellResult(box, score, explanation)
            gallery.offer(len(cells), cell, crop)
            cells.append(cell)
        waiting, waiting_boxes = crops[ready:].copy(), boxes[ready:]
    focus = float(np.median(focus_values)) if focus_values else None
    return CellCalls(cells, focus, gallery.chosen(cells))


def read_cell_crops(reader, boxes_xyxy: np.ndarray, model, um_per_px: float):
    """Model crops of each box, reading only a small region around each from the capture."""
    from smearscope.attributes.predict import crop_for_model

    cfg = model.config
    half = 0.75 * cfg.crop_um / um_per_px
    crops = np.empty((len(boxes_xyxy), cfg.input_size, cfg.input_size, 3), np.uint8)
    kept, rejected = [], []
    for i, box in enumerate(boxes_xyxy):
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0 = int(max(0, np.floor(cx - half))), int(max(0, np.floor(cy - half)))
        x1, y1 = int(min(reader.width, np.ceil(cx + half))), int(min(reader.height, np.ceil(cy + half)))
        if x1 <= x0 or y1 <= y0:
            rejected.append((i, "box lies outside the capture"))
            continue
        patch = reader.read_region(x0, y0, x1, y1)
        local = (box - np.array([x0, y0, x0, y0], dtype=np.float64))[None, :]
        result = crop_for_model(model, patch, local, um_per_px)
        if result.rejected:
            rejected.append((i, result.rejected[0][1]))
            continue
        crops[len(kept)] = result.crops[0]
        kept.append(i)
    return crops[:len(kept)], kept, rejected


def default_weights() -> tuple[Path, Path]:
    """The detector and cell-model weights shipped inside the package."""
    from importlib import resources

    detector = Path(str(resources.files("smearscope.detect").joinpath("weights", "detector.onnx")))
    cells = Path(str(resources.files("smearscope.attributes").joinpath("weights", "cells.pt")))
    for path in (detector, cells):
        if not path.is_file():
            raise ValueError(f"{path}: bundled weights are missing; pass --detector and --cells")
    return detector, cells


def weights_paths(options: AnalyzeOptions) -> tuple[Path, Path]:
    """The detector and cell-model files these options use (bundled ones where not given)."""
    detector = Path(options.detector) if options.detector else None
    cells = Path(options.cells) if options.cells else None
    if detector is None or cells is None:
        bundled_detector, bundled_cells = default_weights()
        detector, cells = detector or bundled_detector, cells or bundled_cells
    return detector, cells


def analysis_settings(options: AnalyzeOptions) -> dict:
    """Everything that changes the results: the options and the identity of both weights files."""
    settings: dict = {"options": asdict(options)}
    for name, path in zip(("detector", "cells"), weights_paths(options)):
        stat = path.stat()
        settings[name] = {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return settings


def check_settings(out_dir: str | Path, options: AnalyzeOptions) -> None:
    """Refuse to resume into ``out_dir`` if it holds results made with other settings."""
    from smearscope.datasets.io import read_json, write_json_atomic

    path = Path(out_dir) / SETTINGS_FILE
    settings = analysis_settings(options)
    if path.is_file():
        saved = read_json(path)
        if saved != settings:
            changed = sorted(k for k in set(saved.get("options", {})) | set(settings["options"])
                             if saved.get("options", {}).get(k) != settings["options"].get(k))
            changed += [k for k in ("detector", "cells") if saved.get(k) != settings[k]]
            raise ValueError(f"{out_dir}: holds results made with other settings ({', '.join(changed)}); "
                             "choose another --out folder")
    write_json_atomic(path, settings)


def make_capture_job(options: AnalyzeOptions, chunk_size: int = CELL_CHUNK) -> Callable[[Path, Path], dict]:
    """Load both models once; return ``analyze_one(capture, folder) -> result dict``.

    ``chunk_size`` cells are cropped and typed at once (see :func:`call_cells`).
    """
    from smearscope.attributes.explain import trained_heads
    from smearscope.attributes.model import load_checkpoint
    from smearscope.datasets.runtime import set_torch_threads
    from smearscope.detect.yolo_predict import load_predictor

    set_torch_threads()
    detector_path, cells_path = weights_paths(options)
    backend = "onnx" if detector_path.suffix.lower() == ".onnx" else options.backend
    predictor = load_predictor(detector_path, backend=backend, conf=options.conf, iou=options.iou, batch=options.batch)
    model = load_checkpoint(cells_path)
    heads = trained_heads(model.config.heads, model.config.trained_heads)
    wbc_class_ids = {i for i, name in enumerate(predictor.metadata.class_names) if name == "wbc"}
    if not wbc_class_ids:
        raise ValueError(f"{detector_path}: detector has no 'wbc' class (classes: {predictor.metadata.class_names})")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")

    def analyze_one(capture: Path, folder: Path) -> dict:
        from smearscope.detect.capture import open_capture
        from smearscope.detect.infer import detect_capture
        from smearscope.detect.scale import resample_factor

        started = time.perf_counter()
        with open_capture(capture) as reader:
            scale = decide_scale(reader, options)
            factor = resample_factor(scale.um_per_px, predictor.metadata.um_per_px)
            detections = detect_capture(
                reader, predictor, tile=predictor.metadata.imgsz, overlap=options.overlap,
                batch=options.batch, scale=factor, conf=options.conf, iou=options.iou,
            )
            keep = np.array([c in wbc_class_ids for c in detections.class_ids], dtype=bool)
            detections = detections.select(keep)
            calls = call_cells(reader, detections, model, heads, scale.um_per_px, chunk_size,
                               gallery_per_type=None if options.report else 0)
            overview = _overview(reader)
            result = _capture_result(capture, reader, scale, calls, options)
        result.seconds = time.perf_counter() - started
        _write_outputs(result, folder, overview, calls.thumbnails, options)
        return result.as_dict()

    return analyze_one


def _overview(reader) -> np.ndarray:
    """The whole capture, downscaled so that its longer side is at most OVERVIEW_MAX_SIDE.

    Read in horizontal strips so that a huge capture is never held at full resolution.
    """
    factor = min(1.0, OVERVIEW_MAX_SIDE / max(reader.width, reader.height))
    if factor == 1.0:
        return reader.read_region(0, 0, reader.width, reader.height)
    out_w = max(1, round(reader.width * factor))
    strip = max(1, OVERVIEW_STRIP_PIXELS // reader.width)
    parts = []
    for y0 in range(0, reader.height, strip):
        y1 = min(reader.height, y0 + strip)
        o0, o1 = round(y0 * factor), round(y1 * factor)
        if o1 > o0:
            parts.append(reader.read_scaled_region(0, y0, reader.width, y1, out_w, o1 - o0))
    return np.concatenate(parts)


def _capture_result(capture, reader, scale: ScaleDecision, calls: CellCalls, options: AnalyzeOptions):
    from smearscope.tools.results import CaptureResult

    return CaptureResult(
        capture=str(capture),
        width=reader.width,
        height=reader.height,
        um_per_px=scale.um_per_px,
        scale_source=scale.source,
        scale_confidence=scale.confidence,
        focus=calls.focus,
        out_of_focus=calls.focus is not None and calls.focus < options.focus_threshold,
        cells=calls.cells,
    )


def result_record(result) -> ImageRecord:
    """The capture's cells as an ImageRecord (for COCO export and FiftyOne)."""
    from smearscope.datasets.schema import attribute_specs

    known = attribute_specs()
    names = sorted({n for c in result.cells for n in c.explanation.attributes if n in known})
    return ImageRecord(
        path=result.capture,
        width=result.width,
        height=result.height,
        domain=Domain(source="smearscope", um_per_px=result.um_per_px),
        boxes_xyxy=np.array([c.box_xyxy for c in result.cells], dtype=np.float64).reshape(-1, 4),
        cell_types=[c.explanation.cell_type for c in result.cells],
        attributes={n: [c.explanation.attributes.get(n, "unknown") for c in result.cells] for n in names},
        scores=np.array([c.detection_score for c in result.cells], dtype=np.float64),
    )


def _write_outputs(result, folder: Path, overview: np.ndarray, thumbnails: dict[int, bytes],
                   options: AnalyzeOptions) -> None:
    from smearscope.datasets.formats.coco import save_coco
    from smearscope.datasets.io import write_json_atomic
    from smearscope.tools.outputs import draw_overlay, write_cells_csv, write_geojson, write_png
    from smearscope.tools.report_html import write_report

    write_cells_csv(result, folder / "cells.csv")
    save_coco([result_record(result)], folder / "cells.coco.json", attribute_schema=None)
    write_geojson(result, folder / "cells.geojson")
    write_json_atomic(folder / "differential.json", result.differential().as_dict())
    scale = overview.shape[1] / result.width
    write_png(draw_overlay(overview, result, box_scale=scale), folder / "overlay.png")
    if options.report:
        write_report(result, thumbnails, "overlay.png", folder / "report.html")
