"""YOLO inference on tiles, with PyTorch (ultralytics) or ONNX Runtime, and ONNX export.

``load_predictor(weights)`` returns a callable ``predict(tiles) -> [(boxes_xyxy, scores,
class_ids), ...]`` for RGB uint8 tiles, boxes in tile pixels. Both backends share one
pre-processing: a tile that fits in ``imgsz`` is padded bottom-right with grey 114 to an
``imgsz`` square and never enlarged, so cells keep the scale the detector was trained at
(tiles cut at the weights' ``um_per_px``); a larger tile is shrunk to fit first. On that
square both backends see identical pixels; ONNX output is decoded and non-maximum
suppressed here the way ultralytics does it (class-aware NMS at IoU ``iou``, at most
``max_det`` boxes), so the two agree within floating-point tolerance.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from smearscope.detect.yolo_env import import_yolo, use_threads
from smearscope.detect.yolo_meta import (
    DetectorMetadata,
    embed_onnx_metadata,
    read_detector_metadata,
    save_detector_metadata,
)

PAD_VALUE = 114
MAX_WH = 7680  # box offset per class for class-aware NMS, as in ultralytics
BACKENDS = ("torch", "onnx")

Prediction = tuple[np.ndarray, np.ndarray, np.ndarray]


def to_canvas(tile: np.ndarray, imgsz: int) -> tuple[np.ndarray, float]:
    """``tile`` placed top-left on an ``imgsz`` square of grey 114, and the resize gain (<= 1)."""
    import cv2

    if not isinstance(tile, np.ndarray) or tile.ndim != 3 or tile.shape[2] != 3 or tile.dtype != np.uint8:
        shape = getattr(tile, "shape", None)
        raise ValueError(f"tile: expected an RGB uint8 array (H, W, 3), got {shape} {getattr(tile, 'dtype', type(tile))}")
    height, width = tile.shape[:2]
    if height == 0 or width == 0:
        raise ValueError("tile: empty image")
    gain = min(1.0, imgsz / height, imgsz / width)
    if gain < 1.0:
        size = (max(1, round(width * gain)), max(1, round(height * gain)))
        tile = cv2.resize(tile, size, interpolation=cv2.INTER_AREA)
    canvas = np.full((imgsz, imgsz, 3), PAD_VALUE, dtype=np.uint8)
    canvas[: tile.shape[0], : tile.shape[1]] = tile
    return canvas, gain


def _to_tile(prediction: Prediction, gain: float, width: int, height: int) -> Prediction:
    """Boxes from canvas to tile pixels, clipped to the tile; empty boxes dropped."""
    boxes, scores, classes = prediction
    boxes = boxes / gain
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    return boxes[keep], scores[keep], classes[keep]


def from_ultralytics(results: Sequence) -> list[Prediction]:
    """``(xyxy float64 (N, 4), scores (N,), class ids int64 (N,))`` per ultralytics ``Results``."""
    out = []
    for result in results:
        boxes = result.boxes
        if boxes is None:
            raise ValueError("ultralytics result holds no boxes: not a detection model")
        out.append((
            boxes.xyxy.cpu().numpy().astype(np.float64).reshape(-1, 4),
            boxes.conf.cpu().numpy().astype(np.float64).reshape(-1),
            boxes.cls.cpu().numpy().astype(np.int64).reshape(-1),
        ))
    return out


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    order = np.argsort(-scores, kind="stable")
    areas = (boxes_xyxy[:, 2] - boxes_xyxy[:, 0]) * (boxes_xyxy[:, 3] - boxes_xyxy[:, 1])
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        xx1 = np.maximum(boxes_xyxy[i, 0], boxes_xyxy[rest, 0])
        yy1 = np.maximum(boxes_xyxy[i, 1], boxes_xyxy[rest, 1])
        xx2 = np.minimum(boxes_xyxy[i, 2], boxes_xyxy[rest, 2])
        yy2 = np.minimum(boxes_xyxy[i, 3], boxes_xyxy[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def decode_yolo_output(output: np.ndarray, conf: float, iou: float, max_det: int) -> Prediction:
    """One image's raw YOLO head output ``(4 + nc, anchors)`` (xywh, class scores) to boxes."""
    pred = output.T.astype(np.float64)
    class_scores = pred[:, 4:]
    classes = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(pred)), classes]
    mask = scores > conf
    xywh, scores, classes = pred[mask, :4], scores[mask], classes[mask]
    boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    keep = nms(boxes + classes[:, None] * MAX_WH, scores, iou)[:max_det]
    return boxes[keep], scores[keep], classes[keep].astype(np.int64)


def decode_end2end_output(output: np.ndarray, conf: float, max_det: int) -> Prediction:
    """One image's NMS-free output ``(max_det, 6)`` rows ``x1 y1 x2 y2 score class``."""
    rows = output.astype(np.float64)
    rows = rows[rows[:, 4] > conf][:max_det]
    return rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64)


class DetectorPredictor:
    """``predict(tiles) -> [(boxes_xyxy, scores, class_ids)]``; ``metadata`` tells the scale."""

    def __init__(self, run: Callable[[list[np.ndarray]], list[Prediction]], metadata: DetectorMetadata,
                 imgsz: int, batch: int) -> None:
        self._run, self.metadata, self.imgsz, self.batch = run, metadata, imgsz, batch

    def __call__(self, tiles: Sequence[np.ndarray]) -> list[Prediction]:
        out: list[Prediction] = []
        for start in range(0, len(tiles), self.batch):
            chunk = tiles[start : start + self.batch]
            canvases, gains = zip(*(to_canvas(t, self.imgsz) for t in chunk))
            for tile, gain, prediction in zip(chunk, gains, self._run(list(canvases))):
                out.append(_to_tile(prediction, gain, tile.shape[1], tile.shape[0]))
        return out


def _torch_runner(weights: Path, imgsz: int, conf: float, iou: float, max_det: int, device: str, threads: int):
    """Run ultralytics' predictor on RGB canvases (it expects BGR numpy arrays)."""
    YOLO = import_yolo()
    model = YOLO(str(weights), task="detect")
    options = {"imgsz": imgsz, "conf": conf, "iou": iou, "max_det": max_det, "device": device, "verbose": False}

    def run(canvases: list[np.ndarray]) -> list[Prediction]:
        bgr = [np.ascontiguousarray(c[..., ::-1]) for c in canvases]
        return from_ultralytics(model.predict(bgr, batch=len(bgr), **options))

    run([np.full((imgsz, imgsz, 3), PAD_VALUE, dtype=np.uint8)])  # loads the model and picks the device
    use_threads(threads)  # after ultralytics' device set-up, which leaves torch one thread
    return run


def _onnx_runner(weights: Path, imgsz: int, conf: float, iou: float, max_det: int, threads: int):
    """Run an exported ONNX model with onnxruntime on RGB canvases."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # spinning threads cost CPU on shared machines
    try:
        session = ort.InferenceSession(str(weights), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for broken models
        raise ValueError(f"{weights}: not a usable ONNX model ({str(exc).splitlines()[0]})") from None
    model_input = session.get_inputs()[0]
    shape = model_input.shape
    if isinstance(shape[2], int) and (shape[2], shape[3]) != (imgsz, imgsz):
        raise ValueError(f"{weights}: model input is fixed at {shape[3]}x{shape[2]}, not {imgsz}x{imgsz}")
    fixed_batch = shape[0] if isinstance(shape[0], int) else None
    end2end = session.get_modelmeta().custom_metadata_map.get("end2end", "False") == "True"

    def infer(batch: np.ndarray) -> list[Prediction]:
        output = session.run(None, {model_input.name: batch})[0]
        if end2end:
            return [decode_end2end_output(o, conf, max_det) for o in output]
        return [decode_yolo_output(o, conf, iou, max_det) for o in output]

    def run(canvases: list[np.ndarray]) -> list[Prediction]:
        batch = np.stack(canvases).transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        if fixed_batch is None:
            return infer(batch)
        if fixed_batch != 1:
            raise ValueError(f"{weights}: the model's batch is fixed at {fixed_batch}; export it with a dynamic batch")
        return [p for i in range(len(batch)) for p in infer(batch[i : i + 1])]

    return run


def load_predictor(
    weights: str | Path,
    backend: str = "torch",
    imgsz: int | None = None,
    conf: float = 0.25,
    iou: float = 0.7,
    batch: int = 8,
    max_det: int = 300,
    device: str = "cpu",
    threads: int = 0,
) -> DetectorPredictor:
    """A ``predict(tiles)`` callable for ``.pt`` (torch) or ``.onnx`` (onnx) weights.

    ``imgsz`` defaults to the size the weights were trained at (their metadata). Tiles up
    to ``imgsz`` keep their scale; cut them at ``predictor.metadata.um_per_px``. ``threads``
    is the CPU thread count (0: every core).
    """
    weights = Path(weights)
    if backend not in BACKENDS:
        raise ValueError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if not weights.is_file():
        raise ValueError(f"{weights}: weights file not found")
    if batch < 1:
        raise ValueError(f"batch: must be at least 1, got {batch}")
    if threads < 0:
        raise ValueError(f"threads: must not be negative, got {threads}")
    metadata = read_detector_metadata(weights)
    size = int(imgsz or metadata.imgsz)
    if size < 32 or size % 32:
        raise ValueError(f"imgsz: must be a positive multiple of 32, got {size}")
    if backend == "torch":
        run = _torch_runner(weights, size, conf, iou, max_det, device, threads)
    else:
        run = _onnx_runner(weights, size, conf, iou, max_det, threads)
    return DetectorPredictor(run, metadata, size, batch)


def export_detector(weights: str | Path, out_path: str | Path, imgsz: int | None = None) -> Path:
    """Export ``.pt`` weights to ONNX at ``out_path`` (dynamic batch and size), metadata included.

    The export runs in a temporary folder beside ``out_path`` (ultralytics writes next to
    the weights it exports), so nothing is added beside the input weights.
    """
    weights, out_path = Path(weights), Path(out_path)
    if not weights.is_file():
        raise ValueError(f"{weights}: weights file not found")
    if out_path.suffix.lower() != ".onnx":
        raise ValueError(f"{out_path}: the output file must end in .onnx")
    metadata = read_detector_metadata(weights)
    YOLO = import_yolo()

    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_path.parent) as tmp:
        local = Path(tmp) / "detector.pt"
        shutil.copyfile(weights, local)
        produced = YOLO(str(local), task="detect").export(
            format="onnx", imgsz=int(imgsz or metadata.imgsz), dynamic=True, simplify=True, device="cpu", verbose=False
        )
        embed_onnx_metadata(produced, metadata)
        os.replace(produced, out_path)
    save_detector_metadata(metadata, out_path)
    return out_path
