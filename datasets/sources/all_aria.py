"""ALL of Aria et al. / Ghaderzadeh et al. (Kaggle "leukemia"): 3,256 single-cell JPGs, 89 patients.

Layout: ``Original/{Benign,Early,Pre,Pro}/`` and ``Segmented/{Benign,Early,Pre,Pro}/``,
names like ``WBC-Benign-001.jpg`` or ``WBC-Malignant-Early-001.jpg``. The folder gives the
class: Benign = hematogones (benign B precursors), Early Pre-B, Pre-B and Pro-B = ALL
lymphoblasts. Longer folder names seen in other copies ("[Malignant] early Pre-B", "Pro-B")
are understood too. There is no split file and no patient id in the names.
"""

from __future__ import annotations

import re
from pathlib import Path

from smearscope.datasets.records import Domain, LoadIssue, LoadResult
from smearscope.datasets.sources._single_cell import (
    add_single_cell,
    child_ci,
    find_root,
    image_files,
    subfolders,
)

SOURCE = "all_aria"
VARIANTS = ("Original", "Segmented")
CLASSES = ("Benign", "Early", "Pre", "Pro")
_NAME = re.compile(r"^WBC-(?:Malignant-)?(?P<label>Benign|Early|Pre|Pro)-\d+$", re.IGNORECASE)


def folder_class(name: str) -> str | None:
    """The class a folder name stands for, or ``None`` when it names none of them."""
    text = name.lower()
    if "benign" in text or "hematogone" in text:
        return "Benign"
    if "early" in text:
        return "Early"
    if "pro" in text:
        return "Pro"
    if "pre" in text:
        return "Pre"
    return None


def _has_classes(folder: Path) -> bool:
    return sum(folder_class(p.name) is not None for p in subfolders(folder)) >= 2


def load_all_aria(root: str | Path, variant: str = "Original") -> LoadResult:
    """Read one variant (``Original`` or ``Segmented``) of the set at ``root``.

    ``root`` may be the set's folder (holding ``Original/`` and ``Segmented/``) or the
    variant folder itself (holding the class folders).
    """
    matches = [v for v in VARIANTS if v.lower() == variant.lower()]
    if not matches:
        raise ValueError(f"{SOURCE}: unknown variant {variant!r}; known: {', '.join(VARIANTS)}")

    def accept(folder: Path) -> bool:
        inner = child_ci(folder, matches[0])
        return (inner is not None and inner.is_dir() and _has_classes(inner)) or (
            folder.name.lower() == matches[0].lower() and _has_classes(folder)
        )

    base = find_root(root, accept, f"ALL (Aria) {matches[0]}/ folder with Benign/Early/Pre/Pro class folders")
    inner = child_ci(base, matches[0])
    class_root = inner if inner is not None and _has_classes(inner) else base
    result = LoadResult()
    for folder in subfolders(class_root):
        label = folder_class(folder.name)
        if label is None:
            result.issues.append(LoadIssue(str(folder), "folder name is none of Benign, Early, Pre, Pro: skipped"))
            continue
        for path in image_files(folder):
            named = _NAME.match(path.stem)
            if named and named["label"].capitalize() != label:
                reason = f"file name says {named['label']} but the folder says {label}: skipped"
                result.issues.append(LoadIssue(str(path), reason))
                continue
            info = {"variant": matches[0], "folder": folder.name}
            add_single_cell(result, path, SOURCE, label, Domain(source=SOURCE), info)
    return result
