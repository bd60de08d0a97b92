"""Whole data-set folders in any of the four formats: read one, write one (images included)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path

from smearscope.datasets.formats import coco, leukemiaattri, voc, yolo
from smearscope.datasets.formats._common import class_pairs, copy_file_atomic, progress
from smearscope.datasets.io import write_text_atomic
from smearscope.datasets.records import ImageRecord, LoadIssue, LoadResult

FORMATS = ("coco", "yolo", "voc", "leukemiaattri")
DEFAULT_SOURCES = {"coco": "coco", "yolo": "yolo", "voc": "bccd", "leukemiaattri": "leukemiaattri"}


@dataclasses.dataclass
class ReadOptions:
    """How to read a folder; each format uses the fields that concern it."""

    source: str | None = None  # label map of configs/taxonomy.yaml (default per format)
    images: str | None = None  # coco: image root; yolo: images folder
    labels: str | None = None  # yolo: labels folder
    names: list[str] | None = None  # yolo: class names in id order
    split: str | None = None  # voc: read only ImageSets/Main/<split>.txt
    domains: list[str] | None = None  # leukemiaattri: domain folders to read
    splits: list[str] | None = None  # leukemiaattri: splits to read
    prefer: str = "json"  # leukemiaattri: json or txt labels first
    variant: str = "auto"  # yolo: auto, plain, attridet or lld


def load_folder(fmt: str, path: str | Path, options: ReadOptions | None = None) -> LoadResult:
    """Read a data set in format ``fmt`` at ``path`` (a COCO JSON file, a YOLO folder with
    ``images/`` and ``labels/``, a VOC folder, or a LeukemiaAttri folder)."""
    options = options or ReadOptions()
    path = Path(path)
    source = options.source or DEFAULT_SOURCES.get(fmt, fmt)
    if fmt == "coco":
        return coco.load_coco(path, options.images, source)
    if fmt == "yolo":
        names = options.names or yolo.read_class_names(_class_file(path))
        images = Path(options.images) if options.images else path / "images"
        labels = Path(options.labels) if options.labels else path / "labels"
        return yolo.load_yolo(images, labels, names, source, options.variant)
    if fmt == "voc":
        if options.split:
            return voc.load_voc_split(path, options.split, source)
        return voc.load_voc_folder(path, source)
    if fmt == "leukemiaattri":
        return leukemiaattri.load_leukemiaattri(path, options.domains, options.splits, options.prefer)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


def _class_file(root: Path) -> Path:
    for candidate in (root / "classes.txt", root / "data.yaml", root / "labels" / "classes.txt"):
        if candidate.is_file():
            return candidate
    raise ValueError(f"{root}: no classes.txt or data.yaml with class names; give the names explicitly")


def write_folder(
    fmt: str,
    records: Iterable[ImageRecord],
    out: str | Path,
    yolo_variant: str = "auto",
    domain: str | None = None,
) -> LoadResult:
    """Write records with copies of their images as a ``fmt`` folder under ``out``.

    Records that the format cannot hold (a file name taken twice, a cell without a
    LeukemiaAttri class, ...) are reported and skipped. ``domain`` (e.g. ``H_100X_C1``)
    fills in microscope/magnification/camera for LeukemiaAttri output; ``yolo_variant``
    ``auto`` writes AttriDet lines when the records carry LeukemiaAttri attributes. Returns
    the records as written and the issues.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    out = Path(out)
    records = list(records)
    if fmt == "leukemiaattri":
        return _write_leukemiaattri(records, out, domain)
    folder = {"coco": "images", "yolo": "images", "voc": "JPEGImages"}[fmt]
    result = _copy_images(records, out / folder, keep_split=fmt != "voc")
    written = result.records
    has_attributes = any(k.startswith("leukemiaattri_") for rec in written for k in rec.attributes)
    if fmt == "coco":
        coco.save_coco(written, out / "annotations.json", out, "leukemiaattri" if has_attributes else None)
    elif fmt == "yolo":
        names = list(dict.fromkeys(label for label, _ in class_pairs(written)))
        variant = ("attridet" if has_attributes else "plain") if yolo_variant == "auto" else yolo_variant
        yolo.save_yolo(written, out / "labels", names, variant, image_root=out / "images")
        write_text_atomic(out / "classes.txt", "".join(f"{n}\n" for n in names))
    else:
        voc.save_voc(written, out / "Annotations")
        _write_voc_splits(written, out)
    return result


def _copy_images(records: Sequence[ImageRecord], folder: Path, keep_split: bool) -> LoadResult:
    """Copy each record's image to ``folder[/<split>]/<name>``; records re-pointed there."""
    result = LoadResult()
    taken: dict[Path, str] = {}
    for rec in progress(records, "copying images"):
        target = folder / ((rec.domain.split or "") if keep_split else "") / rec.filename
        if target in taken:
            result.issues.append(LoadIssue(rec.path, f"skipped: {target} is already taken by {taken[target]}"))
            continue
        try:
            copy_file_atomic(rec.path, target)
        except OSError as exc:
            result.issues.append(LoadIssue(rec.path, f"skipped: cannot copy the image ({exc.strerror or exc})"))
            continue
        taken[target] = rec.path
        result.records.append(dataclasses.replace(rec, path=str(target)))
    return result


def _write_voc_splits(records: Sequence[ImageRecord], out: Path) -> None:
    by_split: dict[str, list[str]] = {}
    for rec in records:
        if rec.domain.split:
            by_split.setdefault(rec.domain.split, []).append(Path(rec.path).stem)
    for split, stems in by_split.items():
        write_text_atomic(out / "ImageSets" / "Main" / f"{split}.txt", "".join(f"{s}\n" for s in stems))


def _write_leukemiaattri(records: Sequence[ImageRecord], out: Path, domain: str | None) -> LoadResult:
    fill = leukemiaattri.parse_domain_name(domain) if domain else None
    if domain and fill is None:
        raise ValueError(f"--domain {domain!r} is not a LeukemiaAttri domain name like H_100X_C1")
    result = LoadResult()
    taken: dict[tuple, str] = {}
    for rec in records:
        if fill is not None and not rec.domain.microscope:
            where = dataclasses.replace(rec.domain, microscope=fill.microscope, magnification=fill.magnification,
                                        camera=fill.camera, split=rec.domain.split or "train")
            rec = dataclasses.replace(rec, domain=where)
        try:
            leukemiaattri.check_leukemiaattri_record(rec)
        except ValueError as exc:
            result.issues.append(LoadIssue(rec.path, f"skipped: {str(exc).removeprefix(f'{rec.path}: ')}"))
            continue
        key = (rec.domain.name, rec.domain.split, rec.filename)
        if key in taken:
            result.issues.append(LoadIssue(rec.path, f"skipped: {'/'.join(key)} is already taken by {taken[key]}"))
            continue
        taken[key] = rec.path
        result.records.append(rec)
    leukemiaattri.save_leukemiaattri(result.records, out)
    return result
