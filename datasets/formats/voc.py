"""Pascal VOC XML: one ``Annotations/<name>.xml`` per image, boxes in pixels.

Coordinates are kept as written (no 1-based shift). Attributes, when present, are read from
and written to a CVAT-style ``<attributes><attribute><name/><value/></attribute>`` block
per object, keyed by qualified attribute name.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from smearscope.datasets.formats._common import (
    check_box,
    progress,
    record_from_cells,
    unify_label,
)
from smearscope.datasets.io import IMAGE_SUFFIXES, check_image_file, write_text_atomic
from smearscope.datasets.records import SPLITS, Domain, ImageRecord, LoadIssue, LoadResult
from smearscope.datasets.schema import UNKNOWN, attribute_specs

_CORNERS = ("xmin", "ymin", "xmax", "ymax")


def load_voc(
    annotations_dir: str | Path,
    images_dir: str | Path,
    source: str = "bccd",
    names: Iterable[str] | None = None,
    split: str | None = None,
) -> LoadResult:
    """Read ``<annotations_dir>/<name>.xml`` for every name given (default: every XML file).

    The image is ``<images_dir>/<filename>`` (else the XML's own stem with an image suffix);
    its size comes from its header. A broken box is reported and skipped, a box exceeding
    the image by a few pixels is clipped and reported, and the rest is still read.
    """
    annotations_dir, images_dir = Path(annotations_dir), Path(images_dir)
    for folder in (annotations_dir, images_dir):
        if not folder.is_dir():
            raise ValueError(f"{folder}: folder not found")
    if names is None:
        paths = sorted(annotations_dir.glob("*.xml"))
    else:
        paths = [annotations_dir / f"{name}.xml" for name in names]
    result = LoadResult()
    domain = Domain(source=source, split=split)
    for path in progress(paths, "reading VOC annotations"):
        record = _read_one(path, images_dir, source, domain, result.issues)
        if record is not None:
            result.records.append(record)
    return result


def load_voc_split(root: str | Path, split: str, source: str = "bccd") -> LoadResult:
    """Read the images named in ``<root>/ImageSets/Main/<split>.txt`` of a VOC folder."""
    root = Path(root)
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        raise ValueError(f"{listing}: split file not found")
    names = [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    return load_voc(root / "Annotations", root / "JPEGImages", source, names, split=split)


def load_voc_folder(root: str | Path, source: str = "bccd") -> LoadResult:
    """Read every annotation of a VOC folder; the split of an image is the one of
    ``ImageSets/Main/{train,val,test}.txt`` that lists it (none if no list does)."""
    root = Path(root)
    result = load_voc(root / "Annotations", root / "JPEGImages", source)
    split_of: dict[str, str] = {}
    for split in SPLITS:
        listing = root / "ImageSets" / "Main" / f"{split}.txt"
        if listing.is_file():
            for line in listing.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    split_of.setdefault(line.split()[0], split)
    if split_of:
        result.records = [
            dataclasses.replace(rec, domain=dataclasses.replace(rec.domain, split=split_of.get(Path(rec.path).stem)))
            for rec in result.records
        ]
    return result


def _read_one(path: Path, images_dir: Path, source: str, domain: Domain, issues: list) -> ImageRecord | None:
    def issue(reason: str) -> None:
        issues.append(LoadIssue(str(path), reason))

    if not path.is_file():
        issue("annotation file not found")
        return None
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        issue(f"malformed XML ({exc})")
        return None
    if root.tag != "annotation":
        issue(f"root element is <{root.tag}>, not <annotation>")
        return None
    image = _image_path(root, path, images_dir)
    try:
        width, height = check_image_file(image)
    except ValueError as exc:
        issue(str(exc))
        return None
    written = (_int(root.findtext("size/width")), _int(root.findtext("size/height")))
    if all(written) and written != (width, height):
        issue(f"<size> {written[0]}x{written[1]} differs from the image's {width}x{height}; the image's is used")
    cells = []
    for n, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        try:
            cell_type = unify_label(source, name)
            corners = [float(obj.findtext(f"bndbox/{k}")) for k in _CORNERS]
        except (TypeError, ValueError) as exc:
            reason = str(exc) if name and obj.find("bndbox") is not None else "no <name> or <bndbox>"
            issue(f"object {n} {name!r}: {reason}; skipped")
            continue
        box, note = check_box(corners, width, height)
        if note:
            issue(f"object {n} {name!r}: {note}" + ("" if box is not None else "; skipped"))
        if box is not None:
            cells.append({"box": box, "label": name, "type": cell_type, "attributes": _attributes(obj)})
    return record_from_cells(str(image), width, height, domain, cells)


def _image_path(root: ET.Element, xml_path: Path, images_dir: Path) -> Path:
    filename = (root.findtext("filename") or "").strip()
    if filename and (images_dir / filename).is_file():
        return images_dir / filename
    for suffix in IMAGE_SUFFIXES:
        candidate = images_dir / f"{xml_path.stem}{suffix}"
        if candidate.is_file():
            return candidate
    return images_dir / (filename or f"{xml_path.stem}.jpg")


def _int(text: str | None) -> int:
    try:
        return int(float(text))
    except (TypeError, ValueError):
        return 0


def _attributes(obj: ET.Element) -> dict[str, str]:
    specs = attribute_specs()
    values = {}
    for item in obj.findall("attributes/attribute"):
        name, value = (item.findtext("name") or "").strip(), (item.findtext("value") or "").strip()
        if name in specs:
            values[name] = value if value in specs[name].values else UNKNOWN
    return values


def save_voc(records: Iterable[ImageRecord], annotations_dir: str | Path) -> list[Path]:
    """Write ``<annotations_dir>/<image stem>.xml`` per record (atomically); return the paths."""
    annotations_dir = Path(annotations_dir)
    documents: dict[Path, tuple[str, str]] = {}
    for rec in records:
        path = annotations_dir / f"{Path(rec.path).stem}.xml"
        if path in documents:
            raise ValueError(f"{rec.path}: its annotation {path} would overwrite that of {documents[path][0]}")
        documents[path] = (rec.path, _document(rec))
    return [write_text_atomic(path, text) for path, (_, text) in documents.items()]


def _document(rec: ImageRecord) -> str:
    root = ET.Element("annotation")
    _text(root, "folder", Path(rec.path).parent.name)
    _text(root, "filename", rec.filename)
    _text(root, "path", rec.path)
    size = ET.SubElement(root, "size")
    for key, value in (("width", rec.width), ("height", rec.height), ("depth", 3)):
        _text(size, key, str(value))
    _text(root, "segmented", "0")
    for i, box in enumerate(rec.boxes_xyxy.tolist()):
        obj = ET.SubElement(root, "object")
        _text(obj, "name", rec.source_labels[i])
        for key, value in (("pose", "Unspecified"), ("truncated", "0"), ("difficult", "0")):
            _text(obj, key, value)
        bndbox = ET.SubElement(obj, "bndbox")
        for key, value in zip(_CORNERS, box):
            _text(bndbox, key, _format_number(value))
        if rec.attributes:
            block = ET.SubElement(obj, "attributes")
            for name, values in rec.attributes.items():
                item = ET.SubElement(block, "attribute")
                _text(item, "name", name)
                _text(item, "value", values[i])
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="unicode") + "\n"


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = text


def _format_number(value: float) -> str:
    """A coordinate as text: integers without a decimal point, others to 3 decimals."""
    value = round(float(value), 3)
    return str(int(value)) if value.is_integer() else f"{value:.3f}".rstrip("0")
