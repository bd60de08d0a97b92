"""AML-Cytomorphology_LMU (Matek et al. 2019): 18,365 single-cell TIFFs (RGBA, 400x400).

Layout: ``AML-Cytomorphology/<CODE>/<CODE>_NNNN.tiff`` plus ``annotations.dat``, one line per
image: ``path label reannotation1 reannotation2`` (``EBO/EBO_0014.tiff EBO LYT EBO``), where
``nan`` means not re-annotated and ``UNC`` unclassifiable. The first label is the cell's label;
the two re-annotations are kept in the record's ``info``. Without ``annotations.dat`` the
class folder gives the label (reported once). Images the file does not list are reported
and skipped. The alpha channel is dropped when pixels are read.
"""

from __future__ import annotations

from pathlib import Path

from smearscope.datasets.records import Domain, LoadIssue, LoadResult
from smearscope.datasets.schema import taxonomy
from smearscope.datasets.sources._single_cell import (
    add_single_cell,
    child_ci,
    find_root,
    image_files,
    progress,
    subfolders,
)

SOURCE = "aml_lmu"
ANNOTATIONS = "annotations.dat"
IMAGE_FOLDER = "AML-Cytomorphology"
MISSING = ("nan", "none", "")


def _code_folders(folder: Path) -> list[Path]:
    codes = taxonomy().sources[SOURCE]
    return [p for p in subfolders(folder) if p.name.upper() in codes]


def _is_layout(folder: Path) -> bool:
    if child_ci(folder, ANNOTATIONS) is not None:
        return True
    inner = child_ci(folder, IMAGE_FOLDER)
    return bool(_code_folders(inner if inner is not None and inner.is_dir() else folder))


def _reannotation(text: str | None) -> str | None:
    return None if text is None or text.strip().lower() in MISSING else text.strip()


def _read_annotations(path: Path, result: LoadResult) -> dict[str, list[str | None]]:
    """Relative image path (lower case, forward slashes) -> [label, reannotation1, reannotation2]."""
    rows: dict[str, list[str | None]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        parts = line.replace(",", " ").replace("\t", " ").split()
        if not parts or parts[0].startswith("#"):
            continue
        if not parts[0].lower().endswith((".tif", ".tiff")):
            if number == 1:
                continue  # a header line
            result.issues.append(LoadIssue(f"{path}:{number}", f"expected '<image>.tiff <label> ...', got {line.strip()!r}"))
            continue
        if len(parts) < 2:
            result.issues.append(LoadIssue(f"{path}:{number}", f"no label after {parts[0]!r}"))
            continue
        key = parts[0].replace("\\", "/").lower()
        rows[key] = (parts[1:4] + [None, None])[:3]
    return rows


def _lookup(rows: dict[str, list[str | None]], image_root: Path, path: Path) -> list[str | None] | None:
    relative = path.relative_to(image_root).as_posix().lower()
    for key in (relative, f"{IMAGE_FOLDER.lower()}/{relative}"):
        if key in rows:
            return rows[key]
    return None


def load_aml_lmu(root: str | Path) -> LoadResult:
    """Read the set at ``root`` (the folder holding ``annotations.dat`` and/or the
    ``AML-Cytomorphology`` image folder, or that image folder itself)."""
    base = find_root(root, _is_layout, f"{ANNOTATIONS} or {IMAGE_FOLDER}/<CODE>/ folders")
    inner = child_ci(base, IMAGE_FOLDER)
    image_root = inner if inner is not None and inner.is_dir() else base
    result = LoadResult()
    dat = child_ci(base, ANNOTATIONS) or child_ci(image_root, ANNOTATIONS)
    rows = _read_annotations(dat, result) if dat is not None else None
    if rows is None:
        result.issues.append(LoadIssue(str(base / ANNOTATIONS), "not found: labels taken from the class folders, no re-annotations"))
    found: set[str] = set()
    codes = _code_folders(image_root)
    for folder in subfolders(image_root):
        if folder not in codes:
            result.issues.append(LoadIssue(str(folder), "not a class-code folder (BAS, EBO, ...): skipped"))
    for folder in codes:
        for path in progress(image_files(folder), f"aml_lmu {folder.name}"):
            if rows is None:
                add_single_cell(result, path, SOURCE, folder.name.upper(), Domain(source=SOURCE), {"folder": folder.name})
                continue
            row = _lookup(rows, image_root, path)
            if row is None:
                result.issues.append(LoadIssue(str(path), f"not listed in {ANNOTATIONS}: skipped"))
                continue
            found.add(path.relative_to(image_root).as_posix().lower())
            label, first, second = row
            info = {"reannotation_1": _reannotation(first), "reannotation_2": _reannotation(second)}
            add_single_cell(result, path, SOURCE, label, Domain(source=SOURCE), info)
    if rows is not None:
        for key in sorted(rows):
            if key not in found and key.removeprefix(f"{IMAGE_FOLDER.lower()}/") not in found:
                result.issues.append(LoadIssue(f"{dat}: {key}", "listed but the image was not found"))
    return result
