"""The CellaVision blog set (Zheng et al. 2018, "Dataset 2"): 100 single-cell BMPs (300x300).

Layout: ``Dataset 2/001.bmp .. 100.bmp``, masks ``Dataset 2/NNN.png`` (0 background,
128 cytoplasm, 255 nucleus) and ``Class Labels of Dataset 2.csv`` with ``image ID,class``:
1 neutrophil, 2 lymphocyte, 3 monocyte, 4 eosinophil, 5 basophil. Some copies describe the
classes shifted by one; that reading is wrong, and a class outside 1-5 is reported. A mask
is not read: its path is kept in the record's ``info`` (``mask_path``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from smearscope.datasets.records import Domain, LoadIssue, LoadResult
from smearscope.datasets.sources._single_cell import add_single_cell, child_ci, find_root

SOURCE = "cellavision"
IMAGE_FOLDER = "Dataset 2"
LABELS_CSV = "Class Labels of Dataset 2.csv"
CLASS_NAMES = {"1": "neutrophil", "2": "lymphocyte", "3": "monocyte", "4": "eosinophil", "5": "basophil"}
IMAGE_SUFFIX = ".bmp"
MASK_SUFFIX = ".png"


def _is_layout(folder: Path) -> bool:
    return child_ci(folder, LABELS_CSV) is not None


def _read_labels(path: Path, result: LoadResult) -> dict[int, str | None]:
    """Image number -> class code ("1".."5"), ``None`` for a listed image whose class is
    unusable (reported); other bad rows become issues too."""
    rows: dict[int, str | None] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for number, row in enumerate(reader, start=1):
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            if len(cells) < 2:
                result.issues.append(LoadIssue(f"{path}:{number}", f"expected 'image ID,class', got {row}"))
                continue
            image_id, code = cells[0], cells[1]
            if number == 1 and not image_id.isdigit():
                continue  # the header
            stem = Path(image_id).stem
            if not stem.isdigit():
                result.issues.append(LoadIssue(f"{path}:{number}", f"image ID {image_id!r} is not a number"))
                continue
            code = code.removesuffix(".0")
            if code not in CLASS_NAMES:
                reason = f"class {code!r} is not 1-5 (1 neutrophil, 2 lymphocyte, 3 monocyte, 4 eosinophil, 5 basophil)"
                result.issues.append(LoadIssue(f"{path}:{number}", reason))
                rows[int(stem)] = None
                continue
            rows[int(stem)] = code
    return rows


def _image_path(folder: Path, number: int) -> Path:
    for name in (f"{number:03d}{IMAGE_SUFFIX}", f"{number}{IMAGE_SUFFIX}"):
        found = child_ci(folder, name)
        if found is not None:
            return found
    return folder / f"{number:03d}{IMAGE_SUFFIX}"


def load_cellavision(root: str | Path) -> LoadResult:
    """Read the set at ``root`` (the folder holding the CSV and ``Dataset 2/``)."""
    base = find_root(root, _is_layout, f"'{LABELS_CSV}'")
    csv_path = child_ci(base, LABELS_CSV)
    folder = child_ci(base, IMAGE_FOLDER) or base
    result = LoadResult()
    rows = _read_labels(csv_path, result)
    used: set[str] = set()
    for number in sorted(rows):
        path = _image_path(folder, number)
        used.add(path.name.lower())
        if rows[number] is None:
            continue
        mask = path.with_suffix(MASK_SUFFIX)
        info = {"class_name": CLASS_NAMES[rows[number]], "mask_path": str(mask) if mask.is_file() else None}
        add_single_cell(result, path, SOURCE, rows[number], Domain(source=SOURCE), info)
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() == IMAGE_SUFFIX and path.name.lower() not in used:
            result.issues.append(LoadIssue(str(path), f"not listed in {LABELS_CSV}: skipped"))
    return result
