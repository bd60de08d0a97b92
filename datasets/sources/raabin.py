"""Raabin-WBC: cropped single cells and original smear fields with boxes (partly unverified).

Cropped layout: ``{Train,TestA,TestB}/{Basophil,Eosinophil,Lymphocyte,Monocyte,Neutrophil}/*.jpg``
(575x575, one centred WBC); ``Train`` becomes split ``train``, ``TestA`` and ``TestB`` split
``test`` (the subset is kept in ``info``; TestB comes from other microscopes).

Original smears: one JSON per image, beside it with the same stem, holding
``Cell_<n>: {Label1, Label2, x1, y1, x2, y2}`` (two experts' labels, pixel corners). These
become detection records; ``Label1`` gives the cell's label (``Label2`` when the first is
missing) and both experts' labels are kept in ``info``. Key names are matched ignoring case
and ``_``; corners are ordered and clipped to the image. Anything else is reported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from smearscope.datasets.io import IMAGE_SUFFIXES, check_image_file, read_json
from smearscope.datasets.records import Domain, ImageRecord, LoadIssue, LoadResult
from smearscope.datasets.schema import taxonomy
from smearscope.datasets.sources._single_cell import (
    add_single_cell,
    find_root,
    image_files,
    issue,
    progress,
    subfolders,
)

SOURCE = "raabin"
LAYOUTS = ("auto", "cropped", "original")
SUBSETS = {"train": "train", "testa": "test", "testb": "test"}
_CELL_KEY = re.compile(r"^cell[_\s-]*\d+$", re.IGNORECASE)
MAX_OVERSHOOT_PX = 3.0


def _is_cropped(folder: Path) -> bool:
    return any(p.name.lower() in SUBSETS for p in subfolders(folder))


def _load_cropped(base: Path, result: LoadResult) -> None:
    labels = taxonomy().sources[SOURCE]
    known = {k.lower(): k for k in labels}
    for subset in subfolders(base):
        split = SUBSETS.get(subset.name.lower())
        if split is None:
            continue
        for folder in subfolders(subset):
            label = known.get(folder.name.lower())
            if label is None:
                result.issues.append(LoadIssue(str(folder), f"not a Raabin-WBC class folder ({', '.join(labels)}): skipped"))
                continue
            for path in progress(image_files(folder), f"raabin {subset.name}/{folder.name}"):
                domain = Domain(source=SOURCE, split=split)
                add_single_cell(result, path, SOURCE, label, domain, {"subset": subset.name})


def _get(entry: dict[str, Any], name: str) -> Any:
    """A value of ``entry`` by key, ignoring case, spaces and underscores."""
    wanted = name.lower().replace("_", "")
    for key, value in entry.items():
        if str(key).lower().replace("_", "").replace(" ", "") == wanted:
            return value
    return None


def _image_for(json_path: Path) -> Path | None:
    for suffix in IMAGE_SUFFIXES:
        for candidate in (json_path.with_suffix(suffix), json_path.with_suffix(suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def _cell_box(entry: dict[str, Any], width: int, height: int) -> np.ndarray:
    """The xyxy box of one cell entry, ordered and clipped; ``ValueError`` when unusable."""
    try:
        x1, y1, x2, y2 = (float(_get(entry, k)) for k in ("x1", "y1", "x2", "y2"))
    except (TypeError, ValueError):
        raise ValueError("needs numeric x1, y1, x2, y2") from None
    box = np.array([min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)])
    overshoot = max(-box[0], -box[1], box[2] - width, box[3] - height)
    if overshoot > MAX_OVERSHOOT_PX:
        raise ValueError(f"box {box.tolist()} lies outside the {width}x{height} image")
    box = np.clip(box, 0, [width, height, width, height])
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"box {box.tolist()} has zero area")
    return box


def read_original(json_path: Path, result: LoadResult) -> ImageRecord | None:
    """The detection record of one original smear image and its JSON; issues go to ``result``."""
    try:
        data = read_json(json_path)
    except ValueError as exc:
        result.issues.append(issue(json_path, exc))
        return None
    if not isinstance(data, dict):
        result.issues.append(LoadIssue(str(json_path), "expected an object of Cell_<n> entries"))
        return None
    image_path = _image_for(json_path)
    if image_path is None:
        result.issues.append(LoadIssue(str(json_path), "no image with the same name beside it: skipped"))
        return None
    try:
        width, height = check_image_file(image_path)
    except ValueError as exc:
        result.issues.append(issue(image_path, exc))
        return None
    boxes, types, labels, first, second = [], [], [], [], []
    for key, entry in data.items():
        if not _CELL_KEY.match(str(key)):
            continue
        where = f"{json_path}#{key}"
        if not isinstance(entry, dict):
            result.issues.append(LoadIssue(where, "expected {Label1, Label2, x1, y1, x2, y2}: cell skipped"))
            continue
        label1, label2 = _get(entry, "Label1"), _get(entry, "Label2")
        label = str(label1 if label1 not in (None, "") else label2 or "").strip()
        try:
            cell_type = taxonomy().unify(SOURCE, label)
            box = _cell_box(entry, width, height)
        except ValueError as exc:
            result.issues.append(LoadIssue(where, f"{exc}: cell skipped"))
            continue
        boxes.append(box)
        types.append(cell_type)
        labels.append(label)
        first.append(None if label1 is None else str(label1))
        second.append(None if label2 is None else str(label2))
    info = {"expert1_labels": first, "expert2_labels": second, "annotation": str(json_path)}
    return ImageRecord(
        path=str(image_path),
        width=width,
        height=height,
        domain=Domain(source=SOURCE),
        boxes_xyxy=np.array(boxes, dtype=np.float64).reshape(-1, 4),
        cell_types=types,
        source_labels=labels,
        info=info,
    )


def _load_originals(json_files: list[Path], result: LoadResult) -> None:
    for json_path in progress(json_files, "raabin originals"):
        record = read_original(json_path, result)
        if record is not None:
            result.records.append(record)


def load_raabin(root: str | Path, layout: str = "auto") -> LoadResult:
    """Read Raabin-WBC at ``root``: ``cropped`` (split/class folders), ``original`` (JSON per
    smear image, searched in all sub-folders) or ``auto`` (whichever is present, or both)."""
    if layout not in LAYOUTS:
        raise ValueError(f"{SOURCE}: unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"{root}: folder not found")
    result = LoadResult()
    cropped_base = None
    if layout in ("auto", "cropped"):
        try:
            cropped_base = find_root(root, _is_cropped, "Raabin-WBC Train/TestA/TestB folders")
        except ValueError:
            if layout == "cropped":
                raise
    if cropped_base is not None:
        _load_cropped(cropped_base, result)
    if layout in ("auto", "original"):
        json_files = sorted(p for p in root.resolve().rglob("*") if p.suffix.lower() == ".json" and p.is_file())
        if not json_files and (layout == "original" or cropped_base is None):
            raise ValueError(f"{root}: no Raabin-WBC Train/TestA/TestB folders and no per-image JSON files found")
        _load_originals(json_files, result)
    return result
