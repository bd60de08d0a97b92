"""Small generated detection sets for the FiftyOne tests: real PNG smears, ground truth in
three domains, and predictions made from it by a seeded RNG (jittered, retyped, dropped and
added boxes)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from smearscope.datasets.fiftyone_bridge import CellExtras
from smearscope.datasets.records import Domain, ImageRecord
from smearscope.datasets.schema import attribute_specs

DOMAINS = (
    Domain("leukemiaattri", "H", "100X", "C1", patient="4", diagnosis="ALL", split="test"),
    Domain("leukemiaattri", "L", "40X", "C2", patient="7", diagnosis="AML", split="test"),
    Domain("bccd", split="val"),
)
TYPES = ("lymphocyte", "neutrophil", "monocyte", "myeloblast")
ATTRIBUTES = ("leukemiaattri_cell_size", "leukemiaattri_nucleolus")
WIDTH, HEIGHT = 120, 96
SLOTS = [(col * 40, row * 48) for row in range(2) for col in range(3)]  # 40x48 slots, one cell each


@dataclass
class DetectionSet:
    """Ground truth, predictions (same images) and the cell model's extras per prediction."""

    truth: list[ImageRecord]
    predictions: list[ImageRecord]
    extras: list[list[CellExtras]]


def draw_smear(path: Path, boxes: np.ndarray, seed: int) -> None:
    """A pale field with a purple disc inside each box."""
    rng = np.random.default_rng(seed)
    image = np.full((HEIGHT, WIDTH, 3), (218, 208, 236), dtype=np.uint8)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    for x1, y1, x2, y2 in boxes:
        centre = (int((x1 + x2) / 2), int((y1 + y2) / 2))
        cv2.ellipse(image, centre, (int((x2 - x1) / 2), int((y2 - y1) / 2)), 0, 0, 360, (150, 60, 120), -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"cv2 could not write {path}")


def _truth(path: Path, domain: Domain, rng: np.random.Generator) -> ImageRecord:
    count = int(rng.integers(2, 5))
    slots = rng.choice(len(SLOTS), size=count, replace=False)
    boxes = []
    for slot in slots:
        sx, sy = SLOTS[slot]
        w, h = rng.uniform(16, 34), rng.uniform(16, 40)
        x1, y1 = sx + rng.uniform(1, 39 - w), sy + rng.uniform(1, 47 - h)
        boxes.append([x1, y1, x1 + w, y1 + h])
    untyped = domain.source == "bccd"
    types = ["wbc"] * count if untyped else [str(t) for t in rng.choice(TYPES, size=count)]
    attributes = {} if untyped else {
        name: [str(v) for v in rng.choice(attribute_specs()[name].values, size=count)] for name in ATTRIBUTES
    }
    draw_smear(path, np.array(boxes), int(rng.integers(1 << 30)))
    return ImageRecord(path=str(path), width=WIDTH, height=HEIGHT, domain=domain, boxes_xyxy=boxes,
                       cell_types=types, source_labels=[t.capitalize() for t in types], attributes=attributes)


def _predict(truth: ImageRecord, rng: np.random.Generator) -> tuple[ImageRecord, list[CellExtras]]:
    boxes, types, scores, attrs, extras = [], [], [], {n: [] for n in ATTRIBUTES}, []
    limits = [WIDTH, HEIGHT, WIDTH, HEIGHT]
    for i, box in enumerate(truth.boxes_xyxy):
        if rng.random() < 0.15:
            continue  # a missed cell
        jittered = np.clip(box + rng.normal(0, [1.5, 1.5, 2.5, 2.5]), 0, limits)
        cell_type = truth.cell_types[i] if truth.cell_types[i] in TYPES and rng.random() < 0.8 else str(rng.choice(TYPES))
        boxes.append(jittered)
        types.append(cell_type)
        scores.append(rng.uniform(0.35, 1.0))
        for name in ATTRIBUTES:
            values = attribute_specs()[name].values
            true_value = truth.attribute(name, i)
            attrs[name].append(true_value if true_value in values and rng.random() < 0.75 else str(rng.choice(values)))
    for _ in range(int(rng.poisson(0.7))):  # spurious boxes
        x1, y1 = rng.uniform(0, WIDTH - 20), rng.uniform(0, HEIGHT - 20)
        boxes.append([x1, y1, x1 + rng.uniform(8, 20), y1 + rng.uniform(8, 20)])
        types.append(str(rng.choice(TYPES)))
        scores.append(rng.uniform(0.05, 0.7))
        for name in ATTRIBUTES:
            attrs[name].append(str(rng.choice(attribute_specs()[name].values)))
    for score, cell_type in zip(scores, types):
        extras.append(CellExtras(
            type_prob=float(np.clip(score + 0.1, 0, 1)),
            attribute_probs={n: 0.8 for n in ATTRIBUTES},
            review=bool(score < 0.5),
            rationale=f"{cell_type}: seeded test prediction",
        ))
    prediction = replace(truth, boxes_xyxy=np.array(boxes).reshape(-1, 4), cell_types=types, source_labels=types,
                         attributes=attrs, scores=np.array(scores))
    return prediction, extras


def make_detection_set(folder: Path, images_per_domain: int = 4, seed: int = 0) -> DetectionSet:
    """Write the images under ``folder`` and return their ground truth and predictions."""
    rng = np.random.default_rng(seed)
    data = DetectionSet([], [], [])
    for d, domain in enumerate(DOMAINS):
        for i in range(images_per_domain):
            truth = _truth(folder / domain.name / f"smear_{d}_{i}.png", domain, rng)
            prediction, extras = _predict(truth, rng)
            data.truth.append(truth)
            data.predictions.append(prediction)
            data.extras.append(extras)
    return data
