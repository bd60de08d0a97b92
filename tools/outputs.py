"""Per-capture output files: cells.csv, GeoJSON for QuPath, and the overlay image."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from smearscope.datasets.io import write_bytes_atomic, write_json_atomic, write_text_atomic
from smearscope.tools.results import CaptureResult

MAX_LABELLED_CELLS = 60  # above this, boxes are coloured by type but not labelled
CSV_FIXED_COLUMNS = (
    "cell_id", "x1", "y1", "x2", "y2", "detection_score", "cell_type", "group",
    "type_probability", "consistency", "review", "review_reasons", "rationale",
)


def write_cells_csv(result: CaptureResult, path: str | Path) -> Path:
    """One row per cell: box, type, probabilities, every attribute with its probability."""
    attribute_names = sorted({name for cell in result.cells for name in cell.explanation.attributes})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(list(CSV_FIXED_COLUMNS) + attribute_names + [f"{n}_probability" for n in attribute_names])
    for i, cell in enumerate(result.cells):
        x1, y1, x2, y2 = cell.box_xyxy
        ex = cell.explanation
        writer.writerow(
            [i, f"{x1:.1f}", f"{y1:.1f}", f"{x2:.1f}", f"{y2:.1f}", f"{cell.detection_score:.4f}",
             ex.cell_type, ex.group, f"{ex.type_probability:.4f}", "" if ex.consistency is None else f"{ex.consistency:.3f}",
             int(ex.review), "; ".join(ex.review_reasons), ex.rationale]
            + [ex.attributes.get(n, "unknown") for n in attribute_names]
            + [f"{ex.attribute_probabilities.get(n, 0.0):.4f}" for n in attribute_names]
        )
    return write_text_atomic(path, buffer.getvalue())


def geojson_dict(result: CaptureResult) -> dict:
    """A GeoJSON FeatureCollection in capture pixels, as QuPath imports it."""
    features = []
    for i, cell in enumerate(result.cells):
        x1, y1, x2, y2 = (round(v, 2) for v in cell.box_xyxy)
        r, g, b = cell.colour
        ex = cell.explanation
        features.append({
            "type": "Feature",
            "id": f"cell-{i}",
            "geometry": {"type": "Polygon", "coordinates": [[[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]},
            "properties": {
                "objectType": "detection",
                "classification": {"name": ex.cell_type, "color": [r, g, b]},
                "measurements": {"detection_score": cell.detection_score,
                                 "type_probability": ex.type_probability,
                                 "consistency": ex.consistency},
                "attributes": ex.attributes,
                "review": ex.review,
                "rationale": ex.rationale,
            },
        })
    return {"type": "FeatureCollection", "features": features}


def write_geojson(result: CaptureResult, path: str | Path) -> Path:
    """Write the cells as GeoJSON, atomically."""
    return write_json_atomic(path, geojson_dict(result), indent=None)


def draw_overlay(overview: np.ndarray, result: CaptureResult, box_scale: float = 1.0) -> np.ndarray:
    """``overview`` (the capture, resized by ``box_scale``) with boxes coloured by type group."""
    import cv2

    canvas = np.ascontiguousarray(overview.copy())
    thickness = max(1, int(round(max(canvas.shape[:2]) / 1200)))
    labelled = len(result.cells) <= MAX_LABELLED_CELLS
    for cell in result.cells:
        x1, y1, x2, y2 = (int(round(v * box_scale)) for v in cell.box_xyxy)
        colour, review = cell.colour, cell.explanation.review
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness + (1 if review else 0))
        if labelled:
            label = cell.explanation.cell_type + ("?" if review else "")
            cv2.putText(canvas, label, (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.45 * thickness, colour, thickness, cv2.LINE_AA)
    return canvas


def write_png(image: np.ndarray, path: str | Path) -> Path:
    """Encode an RGB image as PNG and write it atomically."""
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: could not encode PNG")
    return write_bytes_atomic(path, data.tobytes())
