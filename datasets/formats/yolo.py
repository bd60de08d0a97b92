"""YOLO txt labels: one file per image, one line per cell, coordinates normalised to [0, 1].

Variants by column count: ``plain`` ``cls xc yc w h`` (5), ``attridet`` ``cls xc yc w h
a1..a7`` (12; the LeukemiaAttri attributes in configs/attributes.yaml order) and ``lld``
``cls xc yc w h px1 px2 py1 py2 a1..a7`` (16, read only). Attribute codes follow
LeukemiaAttri's txt files: 4, and 2 for a binary attribute, mean "not applicable".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import yaml

from smearscope.datasets.formats._common import (
    decode_attribute,
    encode_attribute,
    not_applicable_codes,
    progress,
    record_from_cells,
    unify_label,
)
from smearscope.datasets.io import IMAGE_SUFFIXES, check_image_file, write_text_atomic
from smearscope.datasets.records import SPLITS, Domain, ImageRecord, LoadIssue, LoadResult
from smearscope.datasets.schema import schema_attributes

COLUMNS = {"plain": 5, "attridet": 12, "lld": 16}
ATTRIBUTE_START = {12: 5, 16: 9}
# Normalised coordinates may stray this far outside [0, 1] (rounding); they are clipped.
TOLERANCE = 0.002

ClassNames = Sequence[str] | Mapping[int, str]


def read_class_names(path: str | Path) -> list[str]:
    """Class names from ``classes.txt`` (one per line) or a ``data.yaml`` ``names`` list/dict."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: class-name file not found")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() not in (".yaml", ".yml"):
        return [line.strip() for line in text.splitlines() if line.strip()]
    try:
        names = (yaml.safe_load(text) or {}).get("names")
    except (yaml.YAMLError, AttributeError) as exc:
        raise ValueError(f"{path}: not a YAML mapping with 'names' ({str(exc).splitlines()[0]})") from None
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if isinstance(names, list):
        return [str(n) for n in names]
    raise ValueError(f"{path}: has no 'names' list or mapping")


def parse_yolo_label(
    text: str,
    origin: str,
    width: int,
    height: int,
    class_names: ClassNames,
    source: str,
    variant: str = "auto",
) -> tuple[list[dict], list[LoadIssue]]:
    """Cells (``box`` xyxy pixels, ``label``, ``type``, ``attributes``) of one label file's
    text, and a ``LoadIssue`` per line that could not be used."""
    allowed = _allowed_columns(variant)
    names = dict(class_names) if isinstance(class_names, Mapping) else dict(enumerate(class_names))
    specs = schema_attributes("leukemiaattri")
    cells, issues = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            cells.append(_parse_line(line.split(), allowed, names, source, specs, width, height))
        except ValueError as exc:
            issues.append(LoadIssue(origin, f"line {number}: {exc}"))
    return cells, issues


def _allowed_columns(variant: str) -> tuple[int, ...]:
    if variant == "auto":
        return tuple(COLUMNS.values())
    if variant not in COLUMNS:
        raise ValueError(f"unknown YOLO variant {variant!r}; known: auto, {', '.join(COLUMNS)}")
    return (COLUMNS[variant],)


def _parse_line(cols, allowed, names, source, specs, width, height) -> dict:
    if len(cols) not in allowed:
        raise ValueError(f"{len(cols)} columns; expected {' or '.join(map(str, allowed))}")
    try:
        values = [float(c) for c in cols]
    except ValueError:
        bad = next(c for c in cols if not _is_float(c))
        raise ValueError(f"non-numeric value {bad!r}") from None
    if not all(np.isfinite(values)):
        raise ValueError("non-finite value")
    if not values[0].is_integer() or int(values[0]) not in names:
        raise ValueError(f"class id {cols[0]} is not among the {len(names)} class names")
    label = names[int(values[0])]
    cell_type = unify_label(source, label)
    box = _pixel_box(values[1:5], width, height)
    attributes = {}
    if len(cols) in ATTRIBUTE_START:
        codes = values[ATTRIBUTE_START[len(cols)]:]
        attributes = {s.qualified: decode_attribute(s, c, not_applicable_codes("txt")) for s, c in zip(specs, codes)}
    return {"box": box, "label": label, "type": cell_type, "attributes": attributes}


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _pixel_box(xywh: list[float], width: int, height: int) -> np.ndarray:
    xc, yc, w, h = xywh
    shown = " ".join(f"{v:g}" for v in xywh)
    if w < 0 or h < 0:
        raise ValueError(f"negative box (w h = {w:g} {h:g})")
    if w == 0 or h == 0:
        raise ValueError(f"zero-area box (w h = {w:g} {h:g})")
    corners = np.array([xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2])
    if corners.min() < -TOLERANCE or corners.max() > 1 + TOLERANCE:
        raise ValueError(f"box {shown} leaves the normalised range [0, 1]")
    corners = np.clip(corners, 0.0, 1.0)
    return corners * [width, height, width, height]


def load_yolo(
    images_dir: str | Path,
    labels_dir: str | Path,
    class_names: ClassNames,
    source: str,
    variant: str = "auto",
) -> LoadResult:
    """Read every image under ``images_dir`` (recursively) with its label file at the same
    relative path under ``labels_dir``. An image without a label file has no cells; a first
    folder named train/val/test sets the split. Sizes come from the image headers."""
    images_dir, labels_dir = Path(images_dir), Path(labels_dir)
    for folder in (images_dir, labels_dir):
        if not folder.is_dir():
            raise ValueError(f"{folder}: folder not found")
    _allowed_columns(variant)
    result = LoadResult()
    used_labels: set[Path] = set()
    images = sorted(p for p in images_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    for image in progress(images, "reading YOLO labels"):
        relative = image.relative_to(images_dir)
        label_path = labels_dir / relative.with_suffix(".txt")
        used_labels.add(label_path)
        record = _read_one(image, label_path, relative, class_names, source, variant, result.issues)
        if record is not None:
            result.records.append(record)
    for label_path in sorted(labels_dir.rglob("*.txt")):
        if label_path not in used_labels and label_path != labels_dir / "classes.txt":
            result.issues.append(LoadIssue(str(label_path), f"label file has no image in {images_dir}"))
    return result


def _read_one(image, label_path, relative, class_names, source, variant, issues) -> ImageRecord | None:
    try:
        width, height = check_image_file(image)
    except ValueError as exc:
        issues.append(LoadIssue(str(image), str(exc).removeprefix(f"{image}: ")))
        return None
    cells: list[dict] = []
    if label_path.is_file():
        try:
            text = label_path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            issues.append(LoadIssue(str(label_path), "not a UTF-8 text file"))
            return None
        cells, line_issues = parse_yolo_label(text, str(label_path), width, height, class_names, source, variant)
        issues.extend(line_issues)
    split = relative.parts[0] if len(relative.parts) > 1 and relative.parts[0] in SPLITS else None
    return record_from_cells(str(image), width, height, Domain(source=source, split=split), cells)


def save_yolo(
    records: Iterable[ImageRecord],
    labels_dir: str | Path,
    class_names: Sequence[str],
    variant: str = "plain",
    image_root: str | Path | None = None,
) -> list[Path]:
    """Write one label file per record and return their paths.

    A label's path mirrors its image's path under ``image_root`` when the image lies inside
    it, else it is ``<labels_dir>/<image stem>.txt``. Cells are matched to ``class_names``
    by source label, then by unified type; a cell matching neither raises ``ValueError``
    before anything is written.
    """
    if variant not in ("plain", "attridet"):
        raise ValueError(f"save_yolo writes the 'plain' or 'attridet' variant, not {variant!r}")
    labels_dir = Path(labels_dir)
    specs = schema_attributes("leukemiaattri")
    na_code = min(not_applicable_codes("txt"))
    texts: dict[Path, tuple[str, str]] = {}
    for rec in records:
        path = labels_dir / _relative_to(Path(rec.path), image_root).with_suffix(".txt")
        if path in texts:
            raise ValueError(f"{rec.path}: its label file {path} would overwrite that of {texts[path][0]}")
        lines = []
        for i, (x1, y1, x2, y2) in enumerate(rec.boxes_xyxy.tolist()):
            numbers = [(x1 + x2) / 2 / rec.width, (y1 + y2) / 2 / rec.height, (x2 - x1) / rec.width, (y2 - y1) / rec.height]
            cols = [str(_class_index(rec, i, class_names))] + [f"{v:.6f}" for v in numbers]
            if variant == "attridet":
                cols += [str(encode_attribute(s, rec.attribute(s.qualified, i), na_code)) for s in specs]
            lines.append(" ".join(cols))
        texts[path] = (rec.path, "".join(line + "\n" for line in lines))
    return [write_text_atomic(path, text) for path, (_, text) in texts.items()]


def _relative_to(path: Path, root: str | Path | None) -> Path:
    if root is not None:
        try:
            return path.resolve().relative_to(Path(root).resolve())
        except ValueError:
            pass
    return Path(path.name)


def _class_index(record: ImageRecord, cell: int, names: Sequence[str]) -> int:
    """Index in ``names`` of a cell's source label, else of its type; ``ValueError`` otherwise."""
    label, cell_type = record.source_labels[cell], record.cell_types[cell]
    for wanted in (label, cell_type):
        if wanted in names:
            return list(names).index(wanted)
    lowered = [n.lower() for n in names]
    for wanted in (label.lower(), cell_type.lower()):
        if wanted in lowered:
            return lowered.index(wanted)
    raise ValueError(f"{record.path}: cell {cell} ({label!r}, type {cell_type}) is not one of the classes {list(names)}")
