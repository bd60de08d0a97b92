"""The LeukemiaAttri folder layout: twelve domain folders of COCO JSON and AttriDet txt labels.

```
LeukemiaAttri_Dataset/<Domain>/{Images|images}/{train,test}/<patient>_<index>_1000_<DX>.png
                      <Domain>/json_labels/{train,test}.json          (COCO)
                      <Domain>/txt_labels/AttriDet/{train,test}/*.txt  (12 columns)
```
``<Domain>`` is ``{H,L}_{100X,40X,10X}_{C1,C2}``. Labels may instead lie in
``<Domain>/labels.zip``, which is read in memory.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from smearscope.datasets.formats._common import (
    LEUKEMIAATTRI_CLASSES,
    copy_file_atomic,
    progress,
    record_from_cells,
)
from smearscope.datasets.formats.coco import load_coco_data, save_coco
from smearscope.datasets.formats.yolo import parse_yolo_label, save_yolo
from smearscope.datasets.io import check_image_file, list_images
from smearscope.datasets.records import (
    CAMERAS,
    MAGNIFICATIONS,
    MICROSCOPES,
    SPLITS,
    Domain,
    ImageRecord,
    LoadIssue,
    LoadResult,
)
from smearscope.datasets.schema import taxonomy

SOURCE = "leukemiaattri"
DATASET_FOLDER = "LeukemiaAttri_Dataset"
DIAGNOSES = ("ALL", "AML", "CML", "CLL", "APML")
_DOMAIN_RE = re.compile(r"^([HL])_(100X|40X|10X)_(C1|C2)$", re.IGNORECASE)
_FILE_RE = re.compile(r"^(?P<patient>.+?)_(?P<index>\d+)_\d+_(?P<dx>" + "|".join(DIAGNOSES) + r")$", re.IGNORECASE)


def parse_domain_name(name: str, split: str | None = None) -> Domain | None:
    """``H_100X_C1`` -> its Domain; ``None`` for a name that is not a domain folder."""
    match = _DOMAIN_RE.match(name)
    if match is None:
        return None
    microscope, magnification, camera = (g.upper() for g in match.groups())
    return Domain(source=SOURCE, microscope=microscope, magnification=magnification, camera=camera, split=split)


def parse_file_name(name: str) -> tuple[str | None, str | None]:
    """(patient, diagnosis) from ``<patient>_<index>_1000_<DX>.png``; (None, None) otherwise."""
    match = _FILE_RE.match(Path(name).stem)
    if match is None:
        return None, None
    return match["patient"], match["dx"].upper()


def find_dataset_root(root: str | Path) -> Path:
    """The folder holding the domain folders: ``root`` itself or its ``LeukemiaAttri_Dataset``."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root}: folder not found")
    for candidate in (root, _child(root, DATASET_FOLDER)):
        if candidate is not None and any(parse_domain_name(p.name) for p in candidate.iterdir() if p.is_dir()):
            return candidate
    raise ValueError(
        f"{root}: no LeukemiaAttri domain folders ({{H,L}}_{{100X,40X,10X}}_{{C1,C2}}) here or in {DATASET_FOLDER}/"
    )


def _child(folder: Path, name: str) -> Path | None:
    """The entry of ``folder`` called ``name``, ignoring case (exact spelling first)."""
    if (folder / name).exists():
        return folder / name
    if not folder.is_dir():
        return None
    return next((p for p in sorted(folder.iterdir()) if p.name.lower() == name.lower()), None)


class _Labels:
    """A domain's label files, from its folders or from its ``labels.zip`` (read in memory)."""

    def __init__(self, domain_dir: Path, issues: list[LoadIssue]) -> None:
        self.dir = domain_dir
        self.zip: zipfile.ZipFile | None = None
        zip_path = _child(domain_dir, "labels.zip")
        if zip_path is not None and zip_path.is_file():
            try:
                self.zip = zipfile.ZipFile(zip_path)
            except (zipfile.BadZipFile, OSError) as exc:
                issues.append(LoadIssue(str(zip_path), f"not a readable zip file ({exc})"))
        self.zip_path = zip_path

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def _members(self, folder: str) -> list[str]:
        """Zip members directly inside a folder whose path ends with ``folder`` (any case)."""
        if self.zip is None:
            return []
        wanted = "/" + folder.lower().strip("/")
        return sorted(
            n for n in self.zip.namelist()
            if not n.endswith("/") and not n.startswith("__MACOSX") and ("/" + n).rpartition("/")[0].lower().endswith(wanted)
        )

    def _read(self, member: str) -> tuple[str, str]:
        return f"{self.zip_path}:{member}", self.zip.read(member).decode("utf-8", errors="replace")

    def json(self, split: str) -> tuple[str, str] | None:
        """(origin, text) of ``json_labels/<split>.json``, or ``None``."""
        folder = _child(self.dir, "json_labels")
        path = _child(folder, f"{split}.json") if folder else None
        if path is not None and path.is_file():
            return str(path), path.read_text(encoding="utf-8", errors="replace")
        members = [m for m in self._members("json_labels") if Path(m).name.lower() == f"{split}.json"]
        return self._read(min(members, key=len)) if members else None

    def txt(self, split: str) -> dict[str, tuple[str, str]]:
        """image stem -> (origin, text) of ``txt_labels/AttriDet/<split>/*.txt``."""
        folder = self.dir
        for part in ("txt_labels", "AttriDet", split):
            folder = _child(folder, part) if folder else None
        if folder is not None and folder.is_dir():
            return {p.stem: (str(p), p.read_text(encoding="utf-8", errors="replace")) for p in sorted(folder.glob("*.txt"))}
        members = self._members(f"txt_labels/AttriDet/{split}")
        return {Path(m).stem: self._read(m) for m in members if m.lower().endswith(".txt")}


def load_leukemiaattri(
    root: str | Path,
    domains: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    prefer: str = "json",
) -> LoadResult:
    """Read the LeukemiaAttri layout under ``root`` (the dataset folder or its parent).

    Per domain and split, the COCO JSON is read when ``prefer="json"`` (else the AttriDet
    txt files first) and the other kind is the fallback. Txt class ids follow the COCO
    categories when any JSON of the data set has them, else the documented 14-class order.
    Empty domain folders, unreadable files and bad boxes are reported as issues.
    """
    if prefer not in ("json", "txt"):
        raise ValueError(f"prefer must be 'json' or 'txt', not {prefer!r}")
    dataset = find_dataset_root(root)
    folders = {}
    for path in sorted(p for p in dataset.iterdir() if p.is_dir()):
        domain = parse_domain_name(path.name)
        if domain is not None:
            folders[domain.name] = path
    wanted = [d.upper() for d in domains] if domains else list(folders)
    missing = [d for d in wanted if d not in folders]
    if missing:
        raise ValueError(f"{dataset}: domain folder(s) {', '.join(missing)} not found; present: {', '.join(folders)}")
    wanted_splits = list(splits) if splits else list(SPLITS)
    result = LoadResult()
    txt_names = _TxtClassNames(folders)
    for name in progress(wanted, "reading LeukemiaAttri domains"):
        folder = folders[name]
        if not any(p.is_file() for p in folder.rglob("*")):
            result.issues.append(LoadIssue(str(folder), "empty domain folder; skipped"))
            continue
        labels = _Labels(folder, result.issues)
        try:
            for split in wanted_splits:
                result.extend(_load_split(folder, labels, split, prefer, txt_names))
        finally:
            labels.close()
    result.issues.extend(txt_names.issues)
    return result


def _load_split(folder: Path, labels: _Labels, split: str, prefer: str, txt_names: _TxtClassNames) -> LoadResult:
    images_root = _child(folder, "images")
    images_dir = _child(images_root, split) if images_root else None
    images = list_images(images_dir) if images_dir is not None and images_dir.is_dir() else []
    images_dir = images_dir or folder / "Images" / split
    domain = parse_domain_name(folder.name, split)
    result = LoadResult()
    for kind in (("json", "txt") if prefer == "json" else ("txt", "json")):
        loaded = None
        if kind == "json" and (json_file := labels.json(split)) is not None:
            loaded = _from_json(json_file, images_dir, images, result.issues)
        elif kind == "txt" and (txt_files := labels.txt(split)):
            loaded = _from_txt(txt_files, images, txt_names.get(), result.issues)
        if loaded is not None:
            result.records = [_with_domain(rec, domain) for rec in loaded]
            return result
    if images:
        result.issues.append(LoadIssue(
            str(folder), f"no labels for split {split!r} (json_labels/{split}.json or txt_labels/AttriDet/{split}/); "
            f"its {len(images)} image(s) skipped"))
    return result


def _with_domain(record: ImageRecord, domain: Domain) -> ImageRecord:
    patient, diagnosis = parse_file_name(record.filename)
    return dataclasses.replace(record, domain=dataclasses.replace(domain, patient=patient, diagnosis=diagnosis))


def _parse_json(origin: str, text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{origin}: malformed JSON ({exc})") from None


def _from_json(json_file, images_dir: Path, images: list[Path], issues: list) -> list[ImageRecord] | None:
    origin, text = json_file
    try:
        data = _parse_json(origin, text)
        loaded = load_coco_data(data, origin, images_dir, source=SOURCE)
    except ValueError as exc:
        issues.append(LoadIssue(origin, str(exc).removeprefix(f"{origin}: ")))
        return None
    issues.extend(loaded.issues)
    listed = {Path(str(e.get("file_name"))).name for e in data["images"] if isinstance(e, dict)}
    unlisted = [p for p in images if p.name not in listed]
    if unlisted:
        issues.append(LoadIssue(origin, f"{len(unlisted)} image(s) in {images_dir} are not listed "
                                        f"(e.g. {unlisted[0].name}); ignored"))
    return loaded.records


def _from_txt(txt_files: dict, images: list[Path], class_names: dict[int, str], issues: list) -> list[ImageRecord]:
    records = []
    for image in images:
        try:
            width, height = check_image_file(image)
        except ValueError as exc:
            issues.append(LoadIssue(str(image), str(exc).removeprefix(f"{image}: ")))
            continue
        cells = []
        if image.stem in txt_files:
            origin, text = txt_files[image.stem]
            cells, line_issues = parse_yolo_label(text, origin, width, height, class_names, SOURCE)
            issues.extend(line_issues)
        records.append(record_from_cells(str(image), width, height, Domain(source=SOURCE), cells))
    stems = {p.stem for p in images}
    for stem, (origin, _) in txt_files.items():
        if stem not in stems:
            issues.append(LoadIssue(origin, "label file has no image"))
    return records


class _TxtClassNames:
    """Txt class id -> name: the documented order, overridden by COCO categories if any exist."""

    def __init__(self, folders: dict[str, Path]) -> None:
        self.folders = folders
        self.names: dict[int, str] | None = None
        self.issues: list[LoadIssue] = []

    def get(self) -> dict[int, str]:
        if self.names is None:
            self.names = dict(enumerate(LEUKEMIAATTRI_CLASSES))
            found = self._coco_categories()
            if found:
                (origin, categories), *others = found
                self.names.update(categories)
                for other, cats in others:
                    if any(categories.get(k, v) != v for k, v in cats.items()):
                        self.issues.append(LoadIssue(other, f"categories differ from those of {origin}; txt ids follow {origin}"))
        return self.names

    def _coco_categories(self) -> list[tuple[str, dict[int, str]]]:
        found = []
        for folder in self.folders.values():
            labels = _Labels(folder, [])
            try:
                for split in SPLITS:
                    json_file = labels.json(split)
                    if json_file is None:
                        continue
                    try:
                        data = _parse_json(*json_file)
                    except ValueError:
                        continue
                    categories = {
                        int(c["id"]): str(c["name"]) for c in data.get("categories", [])
                        if isinstance(c, dict) and isinstance(c.get("id"), int) and "name" in c
                    } if isinstance(data, dict) else {}
                    if categories:
                        found.append((json_file[0], categories))
            finally:
                labels.close()
        return found


def _leukemiaattri_class(cell_type: str, source_label: str) -> str | None:
    """The LeukemiaAttri class of a cell: the one of its unified type, else the one whose
    coarse type contains it, else the one its source label names; ``None`` if none fits."""
    tax = taxonomy()
    table = tax.sources[SOURCE]
    for fits in (
        lambda name: table[name] == cell_type,
        lambda name: cell_type in tax.coarse.get(table[name], ()),
        lambda name: name.lower() == source_label.strip().lower(),
    ):
        for name in LEUKEMIAATTRI_CLASSES:
            if fits(name):
                return name
    return None


def check_leukemiaattri_record(record: ImageRecord) -> list[str]:
    """The LeukemiaAttri class of each cell; ``ValueError`` naming the record when its
    Domain lacks microscope/magnification/camera/split or a cell fits none of the classes."""
    d = record.domain
    for field, value, legal in (("microscope", d.microscope, MICROSCOPES), ("magnification", d.magnification, MAGNIFICATIONS),
                                ("camera", d.camera, CAMERAS), ("split", d.split, SPLITS)):
        if value not in legal:
            raise ValueError(f"{record.path}: domain {field} is {value!r}; LeukemiaAttri layout needs one of {', '.join(legal)}")
    classes = []
    for i, (cell_type, label) in enumerate(zip(record.cell_types, record.source_labels)):
        name = _leukemiaattri_class(cell_type, label)
        if name is None:
            raise ValueError(f"{record.path}: cell {i} ({label!r}, type {cell_type}) has no LeukemiaAttri class")
        classes.append(name)
    return classes


def save_leukemiaattri(records: Iterable[ImageRecord], root: str | Path) -> None:
    """Write records in the LeukemiaAttri layout under ``root`` (the dataset folder).

    Images are copied to ``<Domain>/Images/<split>/`` unless already there; labels go to
    ``json_labels/<split>.json`` and ``txt_labels/AttriDet/<split>/*.txt``. Every record is
    checked before anything is written (``ValueError`` naming the record).
    """
    root = Path(root)
    groups: dict[tuple[str, str], list[ImageRecord]] = defaultdict(list)
    destinations: dict[Path, str] = {}
    table = taxonomy().sources[SOURCE]
    for rec in records:
        classes = check_leukemiaattri_record(rec)
        domain_dir = root / rec.domain.name
        images_dir = (_child(domain_dir, "images") or domain_dir / "Images") / rec.domain.split
        target = images_dir / rec.filename
        if target in destinations:
            raise ValueError(f"{rec.path}: would overwrite {target}, already taken by {destinations[target]}")
        destinations[target] = rec.path
        written = dataclasses.replace(rec, path=str(target), source_labels=classes, cell_types=[table[c] for c in classes])
        groups[(rec.domain.name, rec.domain.split)].append(written)
    for target, source in progress(list(destinations.items()), "copying images"):
        copy_file_atomic(source, target)
    for (domain_name, split), group in groups.items():
        domain_dir = root / domain_name
        images_dir = Path(group[0].path).parent
        save_coco(group, domain_dir / "json_labels" / f"{split}.json", image_root=images_dir)
        save_yolo(group, domain_dir / "txt_labels" / "AttriDet" / split, LEUKEMIAATTRI_CLASSES, "attridet", image_root=images_dir)
