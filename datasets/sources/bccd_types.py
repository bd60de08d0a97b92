"""BCCD fields with a known WBC type: ``wbc_types.csv`` joined with the VOC WBC box.

``<bccd_root>/wbc_types.csv`` (columns ``image,wbc_type``) names the type of the one WBC in
a field; the box comes from ``Annotations/<stem>.xml``. Only fields with exactly one WBC
box are kept, each as a record with that single cell. The split is the ``ImageSets/Main``
file that lists the field. The scale, unless given, is measured from the RBC boxes of the
fields read: the median longest side of RBC boxes clear of the image border stands for one
RBC diameter (``configs/optics.yaml``).
"""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np

from smearscope.datasets.formats.voc import load_voc
from smearscope.datasets.records import ImageRecord, LoadIssue, LoadResult
from smearscope.datasets.schema import load_config_yaml, taxonomy

MIN_RBC_BOXES = 10
BORDER_PX = 1.0


def load_bccd_types(
    bccd_root: str | Path,
    types_csv: str | Path | None = None,
    um_per_px: float | None = None,
) -> LoadResult:
    """One record per typed BCCD field holding exactly one WBC box (the only cell kept).

    ``types_csv`` defaults to ``<bccd_root>/wbc_types.csv``; ``um_per_px``, when not given,
    is estimated from the RBC boxes (``None`` if fewer than ``MIN_RBC_BOXES`` are usable).
    """
    root = Path(bccd_root)
    csv_path = Path(types_csv) if types_csv else root / "wbc_types.csv"
    labels = _read_types(csv_path)
    splits = _split_of(root)
    stems = {Path(name).stem: name for name in labels}
    voc = load_voc(root / "Annotations", root / "JPEGImages", source="bccd", names=sorted(stems))
    result = LoadResult(issues=list(voc.issues))
    scale = um_per_px if um_per_px is not None else estimate_um_per_px(voc.records)
    tax = taxonomy()
    for record in voc.records:
        stem = Path(record.path).stem
        name = stems.get(stem, record.filename)
        where = f"{csv_path}: {name}"
        wbc = [i for i, t in enumerate(record.cell_types) if tax.is_wbc[t]]
        if len(wbc) != 1:
            result.issues.append(LoadIssue(where, f"field has {len(wbc)} WBC boxes, not exactly one; skipped"))
            continue
        try:
            cell_type = tax.unify("bccd", labels[name])
        except ValueError as exc:
            result.issues.append(LoadIssue(where, f"{exc}; skipped"))
            continue
        one = record.subset([wbc[0]])
        domain = replace(record.domain, split=splits.get(stem), um_per_px=scale)
        result.records.append(replace(one, domain=domain, cell_types=[cell_type], source_labels=[labels[name]]))
    return result


def _read_types(csv_path: Path) -> dict[str, str]:
    """``image -> wbc_type`` from the CSV; a missing file or column raises ``ValueError``."""
    if not csv_path.is_file():
        raise ValueError(f"{csv_path}: WBC type CSV not found")
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        if "image" not in columns or "wbc_type" not in columns:
            raise ValueError(f"{csv_path}: needs columns image,wbc_type; found {', '.join(columns) or 'none'}")
        return {row["image"].strip(): row["wbc_type"].strip() for row in reader if row.get("image")}


def _split_of(root: Path) -> dict[str, str]:
    """Image stem -> split name, from ``ImageSets/Main/<split>.txt`` where present."""
    out: dict[str, str] = {}
    folder = root / "ImageSets" / "Main"
    for listing in sorted(folder.glob("*.txt")) if folder.is_dir() else []:
        for line in listing.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.setdefault(line.split()[0], listing.stem)
    return out


def estimate_um_per_px(records: list[ImageRecord]) -> float | None:
    """RBC diameter (um) over the median longest side of RBC boxes clear of the border."""
    sizes = []
    for record in records:
        for (x1, y1, x2, y2), cell_type in zip(record.boxes_xyxy, record.cell_types):
            inside = x1 > BORDER_PX and y1 > BORDER_PX and x2 < record.width - BORDER_PX and y2 < record.height - BORDER_PX
            if cell_type == "rbc" and inside:
                sizes.append(max(x2 - x1, y2 - y1))
    if len(sizes) < MIN_RBC_BOXES:
        return None
    rbc_um = float(load_config_yaml("optics.yaml")["sizes_um"]["rbc_diameter"])
    return rbc_um / float(np.median(sizes))
