"""Drawn cells and tiny folders in the WBCAtt layout, for the cell model tests."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

BACKGROUND = (236, 226, 222)
# Cytoplasm colours that stand for two WBCAtt cytoplasm_colour values.
CYTOPLASM = {"light blue": (196, 216, 250), "purple blue": (150, 84, 168)}
WBCATT_COLUMNS = (
    "img_name", "label", "cell_size", "cell_shape", "nucleus_shape", "nuclear_cytoplasmic_ratio", "chromatin_density",
    "cytoplasm_vacuole", "cytoplasm_texture", "cytoplasm_colour", "granule_type", "granule_colour", "granularity", "path",
)


def draw_cell(size: int, diameter_px: float, cytoplasm: tuple[int, int, int], rng: np.random.Generator,
              centre: tuple[float, float] | None = None) -> np.ndarray:
    """An RGB field of ``size`` px with one round cell (cytoplasm + dark nucleus) and some noise."""
    image = np.empty((size, size, 3), np.uint8)
    image[:] = BACKGROUND
    cx, cy = centre or (size / 2 + rng.uniform(-2, 2), size / 2 + rng.uniform(-2, 2))
    radius = diameter_px / 2
    cv2.circle(image, (int(round(cx)), int(round(cy))), int(round(radius)), cytoplasm, -1, lineType=cv2.LINE_AA)
    cv2.circle(image, (int(round(cx)), int(round(cy))), int(round(radius * 0.55)), (92, 52, 132), -1, lineType=cv2.LINE_AA)
    noise = rng.normal(0, 4, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _row(name: str, label: str, colour: str, path: str) -> dict:
    values = dict(zip(WBCATT_COLUMNS, [name, label, "big", "round", "segmented-bilobed", "low", "densely", "no", "clear",
                                       colour, "round", "red", "yes", path]))
    if label == "Lymphocyte":
        values.update(nucleus_shape="unsegmented-round", nuclear_cytoplasmic_ratio="high", granule_type="nil",
                      granule_colour="nil", granularity="no", cell_size="small")
    return values


def make_wbcatt_folder(root: Path, counts: dict[str, int], seed: int = 0, size: int = 96) -> Path:
    """A folder in the WBCAtt layout: blue-purple cells are lymphocytes (LY_), light ones eosinophils (EO_)."""
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        rows = []
        for i in range(count):
            colour = "purple blue" if i % 2 else "light blue"
            label, prefix, folder = ("Lymphocyte", "LY", "lymphocyte") if i % 2 else ("Eosinophil", "EO", "eosinophil")
            name = f"{prefix}_{split}{i}.png"
            relative = f"PBC_dataset_normal_DIB/{folder}/{name}"
            target = root / "images" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            image = draw_cell(size, rng.uniform(0.5, 0.6) * size, CYTOPLASM[colour], rng)
            cv2.imwrite(str(target), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            rows.append(_row(name, label, colour, relative))
        with (root / f"pbc_attr_v1_{split}.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=WBCATT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return root
