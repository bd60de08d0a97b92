"""WBCAtt (Tsutsui et al. 2023): PBC single-cell images with a cell type and 11 attributes.

Layout: ``<root>/pbc_attr_v1_{train,val}.csv`` with columns ``img_name,label,<11
attributes>,path`` and the images at ``<root>/images/<path>``. Any folder of that layout is
read, with any CSV name. Each image holds one centred cell, so each record gets one cell
whose box is the whole image; crops are taken around the box centre (the image centre).

The unified type comes from the CSV label (``wbcatt`` map). When the PBC file-name prefix
(``SNE_``, ``BNE_``, ...) maps to a finer type of that label (``pbc`` map), the finer type is
kept and the prefix becomes the source label; otherwise the source label is the CSV label.
"""

from __future__ import annotations

import csv
from pathlib import Path

from smearscope.datasets.io import check_image_file
from smearscope.datasets.records import Domain, ImageRecord, LoadIssue, LoadResult
from smearscope.datasets.schema import UNKNOWN, schema_attributes, taxonomy

REQUIRED_COLUMNS = ("img_name", "label", "path")


def wbcatt_csv_path(root: str | Path, split: str = "train", csv_name: str | None = None) -> Path:
    """The CSV of a split (``pbc_attr_v1_<split>.csv``) or the one named (relative to ``root``)."""
    return Path(root) / (csv_name or f"pbc_attr_v1_{split}.csv")


def load_wbcatt(
    root: str | Path,
    split: str = "train",
    csv_name: str | None = None,
    um_per_px: float | None = None,
) -> LoadResult:
    """Read one WBCAtt CSV of the folder ``root``: one record (one whole-image cell) per row.

    ``csv_name`` overrides the default ``pbc_attr_v1_<split>.csv``; ``um_per_px`` (the
    scale of the images, if known) is stored in every record's ``Domain``. Rows whose image
    is missing or broken, or whose label is unknown, are reported in ``issues`` and skipped;
    an attribute value outside the schema is read as ``unknown`` and reported.
    """
    root = Path(root)
    csv_path = wbcatt_csv_path(root, split, csv_name)
    if not csv_path.is_file():
        raise ValueError(f"{csv_path}: WBCAtt CSV not found")
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {', '.join(missing)}; found {', '.join(columns) or 'none'}")
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    specs = schema_attributes("wbcatt")
    result = LoadResult()
    absent = [s.key for s in specs if s.key not in columns]
    if absent:
        result.issues.append(LoadIssue(str(csv_path), f"no column(s) {', '.join(absent)}: read as unknown"))
    domain = Domain(source="wbcatt", split=split, um_per_px=um_per_px)
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path}:{line}"
        record = _row_record(row, root, domain, specs, where, result.issues)
        if record is not None:
            result.records.append(record)
    return result


def _row_record(row: dict, root: Path, domain: Domain, specs: list, where: str, issues: list) -> ImageRecord | None:
    tax = taxonomy()
    try:
        cell_type = tax.unify("wbcatt", row["label"])
    except ValueError as exc:
        issues.append(LoadIssue(where, f"{exc}; row skipped"))
        return None
    image = _image_path(root, row["path"], row["img_name"])
    try:
        width, height = check_image_file(image)
    except ValueError as exc:
        issues.append(LoadIssue(where, f"{exc}; row skipped"))
        return None
    cell_type, source_label = _refine(row, cell_type, where, issues)
    attributes = {}
    for spec in specs:
        value = row.get(spec.key, "") or UNKNOWN
        if value not in spec.values and value != UNKNOWN:
            legal = ", ".join(spec.values)
            issues.append(LoadIssue(where, f"{spec.key} value {value!r} is not one of {legal}: read as unknown"))
            value = UNKNOWN
        attributes[spec.qualified] = [value]
    return ImageRecord(
        path=str(image),
        width=width,
        height=height,
        domain=domain,
        boxes_xyxy=[[0.0, 0.0, float(width), float(height)]],
        cell_types=[cell_type],
        source_labels=[source_label],
        attributes=attributes,
        info={"img_name": row["img_name"]},
    )


def _image_path(root: Path, relative: str, img_name: str) -> Path:
    """``images/<path>``; else ``<path>`` or ``images/<img_name>`` when only those exist."""
    candidates = [root / "images" / relative, root / relative] if relative else []
    candidates.append(root / "images" / img_name)
    return next((p for p in candidates if p.is_file()), candidates[0])


def _refine(row: dict, cell_type: str, where: str, issues: list) -> tuple[str, str]:
    """(unified type, source label): the PBC prefix's finer type when it agrees with the label."""
    tax = taxonomy()
    prefix = Path(row["img_name"]).stem.split("_")[0]
    try:
        prefix_type = tax.unify("pbc", prefix)
    except ValueError:
        return cell_type, row["label"]
    if prefix_type in tax.members(cell_type):
        return prefix_type, prefix
    if prefix_type == cell_type:
        return cell_type, prefix
    reason = f"file prefix {prefix} means {prefix_type} but the label says {row['label']}: label kept"
    issues.append(LoadIssue(where, reason))
    return cell_type, row["label"]
