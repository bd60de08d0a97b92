"""COCO detection JSON: boxes ``[x, y, w, h]`` in pixels, categories matched by name.

Besides the standard keys, smearscope reads and writes per annotation the LeukemiaAttri
attribute keys (integer codes), an ``attributes`` dict of value names keyed by qualified
attribute name, an optional ``score``; per category a ``smearscope_type``; and per image a
``domain`` dict (source, microscope, magnification, camera, patient, diagnosis,
um_per_px, split) and the record's ``info`` as ``smearscope_info``.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from smearscope.datasets.formats._common import (
    check_box,
    class_pairs,
    decode_attribute,
    encode_attribute,
    leukemiaattri_pairs,
    not_applicable_codes,
    progress,
    record_from_cells,
    unify_label,
)
from smearscope.datasets.io import check_image_file, read_json, write_json_atomic
from smearscope.datasets.records import Domain, ImageRecord, LoadIssue, LoadResult
from smearscope.datasets.schema import UNKNOWN, attribute_specs, schema_attributes

_DOMAIN_FIELDS = tuple(f.name for f in dataclasses.fields(Domain))


class _Image(NamedTuple):
    """One ``images`` entry as read; ``entry`` is ``None`` when the image is unusable."""

    entry: dict | None
    path: Path
    width: int
    height: int
    domain: Domain | None


def load_coco(
    json_path: str | Path,
    image_root: str | Path | None = None,
    source: str = "coco",
    domain: Domain | None = None,
    attribute_schema: str | None = "leukemiaattri",
) -> LoadResult:
    """Read a COCO JSON file; image ``file_name``s resolve against ``image_root``
    (default: the JSON's folder). Malformed JSON raises a one-line ``ValueError``; every
    unusable image or annotation becomes a ``LoadIssue`` and the rest is still read."""
    json_path = Path(json_path)
    root = Path(image_root) if image_root is not None else json_path.parent
    return load_coco_data(read_json(json_path), str(json_path), root, source, domain, attribute_schema)


def load_coco_data(
    data: Any,
    origin: str,
    image_root: str | Path,
    source: str = "coco",
    domain: Domain | None = None,
    attribute_schema: str | None = "leukemiaattri",
) -> LoadResult:
    """Like ``load_coco`` for already parsed JSON; ``origin`` names the file in messages."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{origin}: not a COCO detection file (no 'images' list)")
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise ValueError(f"{origin}: not a COCO detection file ('annotations' is not a list)")
    result = LoadResult()
    reader = _Reader(origin, Path(image_root), source, domain, attribute_schema, result)
    images = reader.read_images(data["images"])
    categories = reader.read_categories(data.get("categories", []))
    cells: dict[Any, list[dict]] = defaultdict(list)
    for ann in annotations:
        cell = reader.read_annotation(ann, images, categories)
        if cell is not None:
            cells[_hashable(ann["image_id"])].append(cell)
    reader.report_unknown_categories(categories)
    for image_id, image in images.items():
        if image.entry is None:
            continue
        info = image.entry.get("smearscope_info")
        result.records.append(record_from_cells(
            str(image.path), image.width, image.height, image.domain, cells.get(image_id, []),
            info if isinstance(info, dict) else None))
    return result


class _Reader:
    """The pieces of one COCO file read in turn, with the issues found on the way."""

    def __init__(self, origin, image_root, source, domain, attribute_schema, result) -> None:
        self.origin = origin
        self.image_root = image_root
        self.source = source
        self.domain = domain
        self.result = result
        self.keys = {s.key: s for s in schema_attributes(attribute_schema)} if attribute_schema else {}
        self.unknown_category_counts: Counter = Counter()

    def issue(self, reason: str) -> None:
        self.result.issues.append(LoadIssue(self.origin, reason))

    def read_images(self, entries: list) -> dict[Any, _Image]:
        """image id -> the image, checked on disk."""
        images: dict[Any, _Image] = {}
        for n, entry in enumerate(progress(entries, "checking COCO images")):
            if not isinstance(entry, dict) or "id" not in entry or not entry.get("file_name"):
                self.issue(f"images[{n}] has no id or file_name")
                continue
            image_id = _hashable(entry["id"])
            if image_id in images:
                self.issue(f"image id {image_id} is listed twice; the second ({entry['file_name']}) is skipped")
                continue
            path = self._image_path(str(entry["file_name"]))
            try:
                header_size = check_image_file(path)
            except ValueError as exc:
                self.issue(f"image {image_id}: {exc}")
                images[image_id] = _Image(None, path, 0, 0, None)
                continue
            width, height = _size(entry, header_size)
            images[image_id] = _Image(entry, path, width, height, self.image_domain(entry))
        return images

    def _image_path(self, file_name: str) -> Path:
        """``image_root/file_name``; else, for a path from another machine, its base name there."""
        path = self.image_root / file_name
        base = self.image_root / file_name.replace("\\", "/").rsplit("/", 1)[-1]
        return base if not path.is_file() and base.is_file() else path

    def image_domain(self, entry: dict) -> Domain:
        if self.domain is not None:
            return self.domain
        stored = entry.get("domain")
        if not isinstance(stored, dict):
            return Domain(source=self.source)
        known = {k: v for k, v in stored.items() if k in _DOMAIN_FIELDS and v is not None}
        known.setdefault("source", self.source)
        return Domain(**known)

    def read_categories(self, entries: Any) -> dict[Any, tuple[str, str | None]]:
        """category id -> (name, unified type or None when the name is unknown)."""
        categories: dict[Any, tuple[str, str | None]] = {}
        for n, entry in enumerate(entries if isinstance(entries, list) else []):
            if not isinstance(entry, dict) or "id" not in entry or "name" not in entry:
                self.issue(f"categories[{n}] has no id or name")
                continue
            name = str(entry["name"])
            try:
                cell_type = unify_label(self.source, name, entry.get("smearscope_type"))
            except ValueError:
                cell_type = None
            categories[_hashable(entry["id"])] = (name, cell_type)
        return categories

    def read_annotation(self, ann: Any, images: dict, categories: dict) -> dict | None:
        """One cell (box, type, label, attributes, score) or ``None`` after noting why not."""
        if not isinstance(ann, dict):
            self.issue(f"annotation {ann!r} is not an object")
            return None
        ann_id = ann.get("id", "?")
        image_id = _hashable(ann.get("image_id"))
        if image_id not in images:
            self.issue(f"annotation {ann_id} names image_id {image_id}, which is not in 'images'")
            return None
        image = images[image_id]
        if image.entry is None:
            return None
        width, height = image.width, image.height
        where = f"annotation {ann_id} (image {image.path.name})"
        category = categories.get(_hashable(ann.get("category_id")))
        if category is None:
            self.issue(f"{where}: category_id {ann.get('category_id')} is not in 'categories'")
            return None
        if category[1] is None:
            self.unknown_category_counts[_hashable(ann.get("category_id"))] += 1
            return None
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            self.issue(f"{where}: bbox {bbox!r} is not four numbers [x, y, w, h]")
            return None
        x, y, w, h = (float(v) for v in bbox)
        box, note = check_box((x, y, x + w, y + h), width, height)
        if note:
            self.issue(f"{where}: {note}" if box is not None else f"{where}: {note}; skipped")
        if box is None:
            return None
        cell = {"box": box, "label": category[0], "type": category[1], "attributes": self.attributes(ann)}
        if _is_number(ann.get("score")):
            cell["score"] = float(ann["score"])
        return cell

    def attributes(self, ann: dict) -> dict[str, str]:
        values = {
            spec.qualified: decode_attribute(spec, ann[key], not_applicable_codes("json"))
            for key, spec in self.keys.items() if key in ann
        }
        named = ann.get("attributes")
        if isinstance(named, dict):
            specs = attribute_specs()
            for name, value in named.items():
                if name in specs:
                    values[name] = str(value) if str(value) in specs[name].values else UNKNOWN
        return values

    def report_unknown_categories(self, categories: dict) -> None:
        for cat_id, count in sorted(self.unknown_category_counts.items(), key=lambda kv: str(kv[0])):
            self.issue(
                f"category {cat_id} {categories[cat_id][0]!r}: unknown class name for source "
                f"{self.source!r}; {count} annotation(s) skipped"
            )


def _hashable(value: Any) -> Any:
    """An id as a dict key; lists and other unhashable values become ``None``."""
    return value if isinstance(value, (int, float, str)) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _size(entry: dict, header_size: tuple[int, int]) -> tuple[int, int]:
    width, height = entry.get("width"), entry.get("height")
    if _is_number(width) and _is_number(height) and width > 0 and height > 0:
        return int(width), int(height)
    return header_size


def save_coco(
    records: Iterable[ImageRecord],
    json_path: str | Path,
    image_root: str | Path | None = None,
    attribute_schema: str | None = "leukemiaattri",
) -> Path:
    """Write records as one COCO JSON file (atomically) and return its path.

    ``file_name`` is relative to ``image_root`` (default: the JSON's folder) when the image
    lies inside it, else absolute. With ``attribute_schema="leukemiaattri"`` its attributes
    are also written as the data set's own keys and integer codes (unknown -> the
    not-applicable code).
    """
    if attribute_schema not in (None, "leukemiaattri"):
        raise ValueError(f"save_coco: attribute_schema must be 'leukemiaattri' or None, not {attribute_schema!r}")
    records = list(records)
    json_path = Path(json_path)
    root = Path(image_root) if image_root is not None else json_path.parent
    pairs = class_pairs(records)
    first_id = 0 if pairs == leukemiaattri_pairs() else 1
    category_ids = {pair: first_id + i for i, pair in enumerate(pairs)}
    specs = schema_attributes(attribute_schema) if attribute_schema else []
    na_code = min(not_applicable_codes("json"))
    images, annotations = [], []
    for image_id, rec in enumerate(records, start=1):
        images.append({
            "id": image_id,
            "file_name": _file_name(Path(rec.path), root),
            "width": rec.width,
            "height": rec.height,
            "domain": {k: v for k, v in dataclasses.asdict(rec.domain).items() if v is not None},
        })
        if rec.info:
            images[-1]["smearscope_info"] = rec.info
        for i, (x1, y1, x2, y2) in enumerate(rec.boxes_xyxy.tolist()):
            ann = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": category_ids[(rec.source_labels[i], rec.cell_types[i])],
                "bbox": [round(v, 3) for v in (x1, y1, x2 - x1, y2 - y1)],
                "area": round((x2 - x1) * (y2 - y1), 3),
                "iscrowd": 0,
            }
            for spec in specs:
                ann[spec.key] = encode_attribute(spec, rec.attribute(spec.qualified, i), na_code)
            if rec.attributes:
                ann["attributes"] = {name: values[i] for name, values in rec.attributes.items()}
            if rec.scores is not None:
                ann["score"] = round(float(rec.scores[i]), 6)
            annotations.append(ann)
    categories = [
        {"id": cat_id, "name": label, "supercategory": "cell", "smearscope_type": cell_type}
        for (label, cell_type), cat_id in category_ids.items()
    ]
    data = {
        "info": {"description": "blood smear cell annotations written by smearscope"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    return write_json_atomic(json_path, data)


def _file_name(path: Path, root: Path) -> str:
    try:
        relative = Path(os.path.relpath(path.resolve(), root.resolve()))
    except ValueError:
        return str(path.resolve())
    return str(path.resolve()) if relative.parts[:1] == ("..",) else relative.as_posix()
