"""The physical scale of annotated training images: presets, or estimated from box sizes.

A source whose scale nobody wrote down (BCCD, TXL-PBC) is measured from its own
annotations: the median longest side of the RBC boxes that do not touch the image border
stands for one RBC diameter (7.5 um, ``configs/optics.yaml``). RBCs are the most uniform
cells of a smear and most fields hold dozens of them; only a source without RBC boxes
falls back on its WBC boxes against a 12 um WBC, which is coarser because WBC types
differ in size. On the data in ``shared/data`` this gives BCCD about 0.069 um/px
(RBC boxes, median 109 px) and TXL-PBC's Raabin part about 0.052 um/px (median 144 px);
their WBC boxes would give 0.060 and 0.044, i.e. WBCs about 1.9 RBC diameters wide.
Measuring the RBCs in the pixels instead (``detect.scale.estimate_um_per_px``, on the
fields where it finds enough single cells) gave 0.074 and 0.058: within 10 %.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from smearscope.datasets.records import ImageRecord
from smearscope.datasets.schema import load_config_yaml, taxonomy
from smearscope.detect.scale import rbc_diameter_um

MIN_BOXES = 10
BORDER_PX = 1.0
WBC_DIAMETER_UM = 12.0


def wbc_diameter_um() -> float:
    """The typical WBC diameter in micrometres from configs/optics.yaml (12 if not given)."""
    return float((load_config_yaml("optics.yaml").get("sizes_um") or {}).get("wbc_diameter", WBC_DIAMETER_UM))


def _inner_sizes(records: Iterable[ImageRecord], wanted: set[str]) -> np.ndarray:
    """Longest sides of boxes of the ``wanted`` types that keep clear of the image border."""
    sizes: list[float] = []
    for record in records:
        for box, cell_type in zip(record.boxes_xyxy, record.cell_types):
            x1, y1, x2, y2 = box
            if cell_type not in wanted:
                continue
            if x1 <= BORDER_PX or y1 <= BORDER_PX or x2 >= record.width - BORDER_PX or y2 >= record.height - BORDER_PX:
                continue
            sizes.append(max(x2 - x1, y2 - y1))
    return np.asarray(sizes, dtype=np.float64)


def estimate_um_per_px_from_boxes(records: list[ImageRecord]) -> tuple[float, str] | None:
    """(um/px, how it was measured) from annotated RBC or WBC boxes; ``None`` if too few."""
    rbc_um, wbc_um = rbc_diameter_um(), wbc_diameter_um()
    rbc = _inner_sizes(records, {"rbc"})
    if len(rbc) >= MIN_BOXES:
        median = float(np.median(rbc))
        return rbc_um / median, f"median of {len(rbc)} RBC boxes {median:.1f} px = {rbc_um} um"
    wbc = _inner_sizes(records, set(taxonomy().wbc_types()))
    if len(wbc) >= MIN_BOXES:
        median = float(np.median(wbc))
        return wbc_um / median, f"median of {len(wbc)} WBC boxes {median:.1f} px = {wbc_um} um"
    return None
