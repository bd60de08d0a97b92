"""PBC normal (Acevedo et al., Data in Brief 2020): 17,092 single-cell JPGs, CellaVision DM96.

Layout: ``PBC_dataset_normal_DIB/<class folder>/<PREFIX>_<id>.jpg``. The file-name prefix
is the finer label (SNE / BNE / NEUTROPHIL in ``neutrophil``; IG / MMY / MY / PMY in ``ig``;
BA, EO, ERB, LY, MO, PLATELET elsewhere) and becomes the source label. A prefix that is no
PBC label, or one that belongs in another class folder, is reported and the file skipped.
"""

from __future__ import annotations

from pathlib import Path

from smearscope.datasets.records import Domain, LoadIssue, LoadResult
from smearscope.datasets.schema import taxonomy
from smearscope.datasets.sources._single_cell import (
    add_single_cell,
    find_root,
    image_files,
    progress,
    subfolders,
)

SOURCE = "pbc"
FOLDER_PREFIXES = {
    "basophil": ("BA",),
    "eosinophil": ("EO",),
    "erythroblast": ("ERB",),
    "ig": ("IG", "MMY", "MY", "PMY"),
    "lymphocyte": ("LY",),
    "monocyte": ("MO",),
    "neutrophil": ("SNE", "BNE", "NEUTROPHIL"),
    "platelet": ("PLATELET",),
}


def _has_classes(folder: Path) -> bool:
    return sum(p.name.lower() in FOLDER_PREFIXES for p in subfolders(folder)) >= 2


def file_prefix(path: Path) -> str:
    """The label prefix of a PBC file name (``SNE_12345.jpg`` -> ``SNE``)."""
    return path.stem.split("_", 1)[0].strip().upper()


def load_pbc(root: str | Path) -> LoadResult:
    """Read the set at ``root`` (``PBC_dataset_normal_DIB`` or a folder holding it)."""
    base = find_root(root, _has_classes, "PBC class folders (basophil, eosinophil, ..., platelet)")
    labels = taxonomy().sources[SOURCE]
    result = LoadResult()
    for folder in subfolders(base):
        allowed = FOLDER_PREFIXES.get(folder.name.lower())
        if allowed is None:
            result.issues.append(LoadIssue(str(folder), f"not a PBC class folder ({', '.join(FOLDER_PREFIXES)}): skipped"))
            continue
        for path in progress(image_files(folder), f"pbc {folder.name}"):
            prefix = file_prefix(path)
            if prefix not in labels:
                reason = f"file-name prefix {prefix!r} is not a PBC label ({', '.join(labels)}): skipped"
                result.issues.append(LoadIssue(str(path), reason))
            elif prefix not in allowed:
                reason = f"prefix {prefix} does not belong in folder {folder.name} ({', '.join(allowed)}): skipped"
                result.issues.append(LoadIssue(str(path), reason))
            else:
                add_single_cell(result, path, SOURCE, prefix, Domain(source=SOURCE), {"folder": folder.name})
    return result
