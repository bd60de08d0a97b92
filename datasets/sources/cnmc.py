"""C-NMC 2019 (Kaggle "leukemia-classification"): single-cell BMPs (450x450), ALL vs normal.

Layout: ``C-NMC_Leukemia/training_data/fold_{0,1,2}/{all,hem}/UID_<subject>_<image>_<cell>_<all|hem>.bmp``
(healthy subjects are ``UID_H<n>_...``) and the preliminary test phase
``validation_data/C-NMC_test_prelim_phase_data/{1..1867}.bmp`` with
``C-NMC_test_prelim_phase_data_labels.csv`` (``Patient_ID,new_names,labels``; 1 = ALL,
0 = HEM). ``all`` is a lymphoblast, ``hem`` a normal B-lymphoid precursor (``hematogone``).

The subject in the UID becomes the patient, so splits can be drawn by patient. Training
folds are split ``train`` (the fold is kept in ``info``); the labelled preliminary test phase
is split ``test``. The final test phase (``testing_data``) has no published labels and is
reported, not read.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from smearscope.datasets.records import Domain, LoadIssue, LoadResult
from smearscope.datasets.sources._single_cell import (
    add_single_cell,
    check_splits,
    child_ci,
    find_root,
    image_files,
    progress,
    subfolders,
)

SOURCE = "cnmc"
SPLITS = ("train", "test")
TRAINING = "training_data"
VALIDATION = "validation_data"
PRELIM_FOLDER = "C-NMC_test_prelim_phase_data"
PRELIM_LABELS = "C-NMC_test_prelim_phase_data_labels.csv"
FINAL_FOLDER = "testing_data"
CSV_LABELS = {"1": "all", "0": "hem"}
_UID = re.compile(r"^UID_(?P<subject>H?\d+)_(?P<image>\d+)_(?P<cell>\d+)_(?P<label>all|hem)$", re.IGNORECASE)
_FOLD = re.compile(r"^fold_?(\d+)$", re.IGNORECASE)


def parse_uid(name: str) -> dict[str, str] | None:
    """Subject, image, cell and label from a ``UID_...`` file name, or ``None``."""
    match = _UID.match(Path(name.strip()).stem)
    if not match:
        return None
    parts = match.groupdict()
    parts["subject"] = parts["subject"].upper()
    parts["label"] = parts["label"].lower()
    return parts


def _domain(subject: str, split: str) -> Domain:
    diagnosis = "healthy" if subject.startswith("H") else "ALL"
    return Domain(source=SOURCE, patient=subject, diagnosis=diagnosis, split=split)


def _is_layout(folder: Path) -> bool:
    return child_ci(folder, TRAINING) is not None or child_ci(folder, VALIDATION) is not None


def _class_folders(fold: Path) -> list[Path]:
    """The ``all`` and ``hem`` folders of one fold (also one level further down)."""
    direct = [p for p in subfolders(fold) if p.name.lower() in CSV_LABELS.values()]
    if direct:
        return direct
    return [p for sub in subfolders(fold) for p in subfolders(sub) if p.name.lower() in CSV_LABELS.values()]


def _load_training(folder: Path, result: LoadResult) -> None:
    for fold in subfolders(folder):
        match = _FOLD.match(fold.name)
        if not match:
            result.issues.append(LoadIssue(str(fold), "not a fold_<n> folder: skipped"))
            continue
        for class_folder in _class_folders(fold):
            label = class_folder.name.lower()
            for path in progress(image_files(class_folder), f"cnmc {fold.name}/{label}"):
                parts = parse_uid(path.name)
                if parts is None:
                    result.issues.append(LoadIssue(str(path), "name is not UID_<subject>_<image>_<cell>_<all|hem>: no patient, skipped"))
                elif parts["label"] != label:
                    result.issues.append(LoadIssue(str(path), f"name says {parts['label']} but the folder says {label}: skipped"))
                else:
                    info = {"fold": int(match.group(1)), "image": parts["image"], "cell": parts["cell"]}
                    add_single_cell(result, path, SOURCE, label, _domain(parts["subject"], "train"), info)


def _read_prelim_labels(path: Path, result: LoadResult) -> dict[str, tuple[str, str]]:
    """Image name -> (label, Patient_ID) from the preliminary-phase CSV."""
    rows: dict[str, tuple[str, str]] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        needed = ("patient_id", "new_names", "labels")
        if not all(c in columns for c in needed):
            raise ValueError(f"{path}: expected columns Patient_ID,new_names,labels; found {reader.fieldnames}")
        for number, row in enumerate(reader, start=2):
            name = (row[columns["new_names"]] or "").strip()
            code = (row[columns["labels"]] or "").strip()
            if code not in CSV_LABELS or not name:
                result.issues.append(LoadIssue(f"{path}:{number}", f"expected an image name and label 0 or 1, got {name!r}, {code!r}"))
                continue
            rows[name.lower()] = (CSV_LABELS[code], (row[columns["patient_id"]] or "").strip())
    return rows


def _load_prelim(folder: Path, result: LoadResult) -> None:
    images = child_ci(folder, PRELIM_FOLDER)
    if images is None:
        result.issues.append(LoadIssue(str(folder / PRELIM_FOLDER), "preliminary test images not found"))
        return
    labels_csv = child_ci(folder, PRELIM_LABELS) or child_ci(images, PRELIM_LABELS)
    if labels_csv is None:
        result.issues.append(LoadIssue(str(folder / PRELIM_LABELS), "label file not found: preliminary test images skipped"))
        return
    try:
        rows = _read_prelim_labels(labels_csv, result)
    except ValueError as exc:
        result.issues.append(LoadIssue(str(labels_csv), str(exc).removeprefix(f"{labels_csv}: ")))
        return
    seen: set[str] = set()
    for path in progress(image_files(images), "cnmc prelim test"):
        row = rows.get(path.name.lower())
        if row is None:
            result.issues.append(LoadIssue(str(path), f"not listed in {labels_csv.name}: skipped"))
            continue
        seen.add(path.name.lower())
        label, patient_id = row
        parts = parse_uid(patient_id)
        if parts is not None and parts["label"] != label:
            result.issues.append(LoadIssue(str(path), f"Patient_ID {patient_id} says {parts['label']} but the label is {label}: skipped"))
            continue
        subject = parts["subject"] if parts is not None else (patient_id or None)
        domain = _domain(subject, "test") if subject else Domain(source=SOURCE, split="test")
        add_single_cell(result, path, SOURCE, label, domain, {"original_name": patient_id})
    for name in sorted(set(rows) - seen):
        result.issues.append(LoadIssue(f"{labels_csv}: {name}", "listed but the image was not found"))


def load_cnmc(root: str | Path, splits: list[str] | None = None) -> LoadResult:
    """Read the set at ``root`` (``C-NMC_Leukemia`` or a folder holding it).

    ``splits``: ``train`` (the three training folds) and/or ``test`` (the labelled
    preliminary test phase); default both.
    """
    wanted = check_splits(splits, SPLITS, SOURCE)
    base = find_root(root, _is_layout, f"C-NMC {TRAINING}/ or {VALIDATION}/ folder")
    result = LoadResult()
    training, validation = child_ci(base, TRAINING), child_ci(base, VALIDATION)
    if "train" in wanted:
        if training is None:
            result.issues.append(LoadIssue(str(base / TRAINING), "training folds not found"))
        else:
            _load_training(training, result)
    if "test" in wanted:
        if validation is None:
            result.issues.append(LoadIssue(str(base / VALIDATION), "preliminary test phase not found"))
        else:
            _load_prelim(validation, result)
    final = child_ci(base, FINAL_FOLDER)
    if final is not None:
        result.issues.append(LoadIssue(str(final), "final test phase has no published labels: not read"))
    return result
