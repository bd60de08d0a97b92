"""Helpers shared by the format modules: labels, attribute codes, box checks, file copies."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

import numpy as np

from smearscope.datasets.records import BOX_TOLERANCE_PX, Domain, ImageRecord
from smearscope.datasets.schema import UNKNOWN, AttributeSpec, load_config_yaml, taxonomy

T = TypeVar("T")

# LeukemiaAttri's 14 classes in the documented id order 0-13.
LEUKEMIAATTRI_CLASSES = (
    "None", "Myeloblast", "Lymphoblast", "Neutrophil", "Atypical lymphocyte", "Promonocyte",
    "Monoblast", "Lymphocyte", "Myelocyte", "Abnormal promyelocyte", "Monocyte",
    "Metamyelocyte", "Eosinophil", "Basophil",
)
# A box may overshoot the image by this much (pixels); it is then clipped, with a note.
CLIP_LIMIT_PX = 3.0


def progress(items: Iterable[T], desc: str) -> Iterator[T]:
    """A tqdm progress bar on a terminal, a plain iteration elsewhere."""
    from tqdm import tqdm

    return iter(tqdm(items, desc=desc, disable=None, leave=False, unit="file"))


@lru_cache(maxsize=None)
def not_applicable_codes(kind: str) -> frozenset[int]:
    """Codes meaning "not applicable" in LeukemiaAttri files (``kind``: json or txt)."""
    table = load_config_yaml("attributes.yaml").get("not_applicable", {})
    return frozenset(int(c) for c in table.get(f"leukemiaattri_{kind}", []))


def decode_attribute(spec: AttributeSpec, raw: object, not_applicable: frozenset[int]) -> str:
    """The value an integer code or value name stands for; not-applicable or unknown -> unknown."""
    if isinstance(raw, str):
        text = raw.strip()
        if text in spec.values:
            return text
        try:
            raw = float(text)
        except ValueError:
            return UNKNOWN
    if isinstance(raw, bool) or not isinstance(raw, (int, float, np.integer, np.floating)):
        return UNKNOWN
    if not float(raw).is_integer():
        return UNKNOWN
    code = int(raw)
    if code in not_applicable or not 0 <= code < len(spec.values):
        return UNKNOWN
    return spec.values[code]


def encode_attribute(spec: AttributeSpec, value: str, not_applicable_code: int) -> int:
    """The integer code of a value; ``unknown`` becomes ``not_applicable_code``."""
    return spec.index(value) if value in spec.values else not_applicable_code


def attribute_table(per_cell: Sequence[dict[str, str]]) -> dict[str, list[str]]:
    """Per-cell attribute dicts -> one list per attribute named anywhere, ``unknown`` filling gaps."""
    names: list[str] = []
    for cell in per_cell:
        names.extend(n for n in cell if n not in names)
    return {name: [cell.get(name, UNKNOWN) for cell in per_cell] for name in names}


def record_from_cells(
    path: str, width: int, height: int, domain: Domain, cells: list[dict], info: dict | None = None
) -> ImageRecord:
    """An ``ImageRecord`` from parsed cells: dicts with ``box`` (xyxy), ``label``, ``type``,
    ``attributes`` and optionally ``score`` (kept only when every cell has one)."""
    scores = [c.get("score") for c in cells]
    return ImageRecord(
        path=path,
        width=width,
        height=height,
        domain=domain,
        boxes_xyxy=np.array([c["box"] for c in cells], dtype=np.float64).reshape(-1, 4),
        cell_types=[c["type"] for c in cells],
        source_labels=[c["label"] for c in cells],
        attributes=attribute_table([c["attributes"] for c in cells]),
        scores=np.array(scores, dtype=np.float64) if cells and None not in scores else None,
        info=info or {},
    )


def unify_label(source: str, label: str, stored_type: str | None = None) -> str:
    """Unified type of a file's class label; ``ValueError`` when nothing knows the label.

    Tried in order: the source's label map, a unified type the file itself stored, the label
    read as a unified type name, and the label map of every source that knows the label
    (when all of them agree; never for bare numbers, whose meaning differs between sources).
    """
    tax = taxonomy()
    if source in tax.sources:
        try:
            return tax.unify(source, label)
        except ValueError:
            pass
    if stored_type in tax.types:
        return stored_type
    name = str(label).strip()
    as_type = name.lower().replace(" ", "_").replace("-", "_")
    if as_type in tax.types:
        return as_type
    found = {table[key] for table in tax.sources.values() for key in table if key.lower() == name.lower()}
    if len(found) == 1 and not name.isdigit():
        return found.pop()
    raise ValueError(f"unknown class name {name!r} (not a {source} label nor a unified type)")


def check_box(box: Sequence[float], width: int, height: int) -> tuple[np.ndarray | None, str | None]:
    """A usable xyxy box and a note, or ``None`` and the reason it is unusable.

    A box overshooting the image by at most ``CLIP_LIMIT_PX`` is clipped (noted unless the
    overshoot is within rounding); beyond that it is rejected.
    """
    xyxy = np.asarray(box, dtype=np.float64).reshape(4)
    shown = "[" + ", ".join(f"{v:g}" for v in xyxy) + "]"
    if not np.all(np.isfinite(xyxy)):
        return None, f"non-finite box {shown}"
    w, h = xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]
    if w < 0 or h < 0:
        return None, f"negative box {shown} (x2 < x1 or y2 < y1)"
    if w == 0 or h == 0:
        return None, f"zero-area box {shown}"
    overshoot = max(-xyxy[0], -xyxy[1], xyxy[2] - width, xyxy[3] - height)
    if overshoot > CLIP_LIMIT_PX:
        return None, f"box {shown} lies outside the {width}x{height} image"
    clipped = np.clip(xyxy, 0, [width, height, width, height])
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        return None, f"box {shown} lies outside the {width}x{height} image"
    if overshoot > BOX_TOLERANCE_PX:
        return clipped, f"box {shown} exceeds the {width}x{height} image by {overshoot:g} px: clipped"
    return clipped, None


def leukemiaattri_pairs() -> list[tuple[str, str]]:
    """The 14 LeukemiaAttri (class name, unified type) pairs in id order."""
    table = taxonomy().sources["leukemiaattri"]
    return [(name, table[name]) for name in LEUKEMIAATTRI_CLASSES]


def class_pairs(records: Iterable[ImageRecord]) -> list[tuple[str, str]]:
    """The distinct (label, unified type) pairs of some records, in a stable order.

    LeukemiaAttri labels give the documented 14 classes in id order; anything else is
    sorted by the taxonomy's type order, then by label.
    """
    pairs = {(label, cell_type) for rec in records for label, cell_type in zip(rec.source_labels, rec.cell_types)}
    documented = leukemiaattri_pairs()
    if pairs and pairs <= set(documented):
        return documented
    order = {t: i for i, t in enumerate(taxonomy().types)}
    return sorted(pairs, key=lambda pair: (order[pair[1]], pair[0]))


def copy_file_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` through a temporary file and a rename; nothing if they are one file."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and os.path.samefile(src, dst):
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst
