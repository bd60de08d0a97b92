"""OpenMedLab "Leukemia": 1,867 single-cell BMPs (450x450), normal cell vs leukemia cell.

Layout: ``Leukemia/image/*.bmp`` and the split lists ``train.txt``, ``val.txt``,
``test.txt``. A list line names an image and its label, 0 = normal cell (a normal B-lymphoid
precursor, unified as ``hematogone``) and 1 = leukemia cell (``lymphoblast``). The exact line
format is not documented: ``image/<name>.bmp 1``, ``<name>.bmp,1`` and the like are all read;
a first line without an image name is taken as a header. Lines that cannot be read, listed
images that are missing and images no list mentions are reported as issues.
"""

from __future__ import annotations

import re
from pathlib import Path

from smearscope.datasets.io import IMAGE_SUFFIXES
from smearscope.datasets.records import Domain, LoadIssue, LoadResult
from smearscope.datasets.sources._single_cell import (
    add_single_cell,
    check_splits,
    child_ci,
    find_root,
    image_files,
)

SOURCE = "openmedlab_leukemia"
SPLITS = ("train", "val", "test")
CLASS_NAMES = {"0": "Normal cell", "1": "Leukemia cell"}
_LINE = re.compile(r"^(?P<name>.+?)[\s,;]+(?P<label>\S+)$")


def _is_layout(folder: Path) -> bool:
    image_dir = child_ci(folder, "image")
    return image_dir is not None and image_dir.is_dir() and any(
        child_ci(folder, f"{s}.txt") is not None for s in SPLITS
    )


def _parse_line(line: str) -> tuple[str, str]:
    """(image name, label) from one list line; ``ValueError`` when it is not of that shape."""
    match = _LINE.match(line.strip())
    if not match:
        raise ValueError(f"expected '<image> <0|1>', got {line.strip()!r}")
    name, label = match["name"].strip().strip("\"'"), match["label"].strip().strip("\"'")
    if label not in CLASS_NAMES:
        raise ValueError(f"label {label!r} is not 0 (normal) or 1 (leukemia) in {line.strip()!r}")
    return name, label


def _looks_like_header(line: str) -> bool:
    return not any(suffix in line.lower() for suffix in IMAGE_SUFFIXES)


def load_openmedlab_leukemia(root: str | Path, splits: list[str] | None = None) -> LoadResult:
    """Read the set at ``root`` (the ``Leukemia`` folder or a folder holding it).

    ``splits`` chooses among train, val and test (default: all three).
    """
    wanted = check_splits(splits, SPLITS, SOURCE)
    base = find_root(root, _is_layout, "OpenMedLab Leukemia set (image/ and train/val/test.txt)")
    image_dir = child_ci(base, "image")
    result = LoadResult()
    listed: set[str] = set()
    for split in SPLITS:
        list_file = child_ci(base, f"{split}.txt")
        if list_file is None:
            if split in wanted:
                result.issues.append(LoadIssue(str(base / f"{split}.txt"), "split list not found"))
            continue
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if number == 1 and _looks_like_header(line):
                continue
            try:
                name, label = _parse_line(line)
            except ValueError as exc:
                result.issues.append(LoadIssue(f"{list_file}:{number}", str(exc)))
                continue
            path = image_dir / Path(name).name
            listed.add(path.name)
            if split in wanted:
                domain = Domain(source=SOURCE, split=split)
                add_single_cell(result, path, SOURCE, label, domain, {"class_name": CLASS_NAMES[label]})
    for path in image_files(image_dir):
        if path.name not in listed:
            result.issues.append(LoadIssue(str(path), "not listed in train.txt, val.txt or test.txt: skipped"))
    return result
