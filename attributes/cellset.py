"""Labelled cell crops decoded once into a uint8 tensor, with their training targets.

Building a :class:`CellSet` reads every image once, crops every labelled cell at the
model's physical scale (plus a margin for augmentation) and encodes its labels for the
heads. A set can be cached in a ``.pt`` file keyed by its inputs, so later epochs and runs
only slice tensors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from smearscope.attributes.crops import crop_cells
from smearscope.attributes.schema import TYPE_HEAD, encode_targets
from smearscope.datasets.io import read_image, write_bytes_atomic
from smearscope.datasets.records import ImageRecord, LoadIssue
from smearscope.datasets.schema import load_config_yaml, taxonomy

CACHE_VERSION = 1


@dataclass
class CropSpec:
    """How cells are cropped: output side, physical side, and the box fallback."""

    size: int  # pixels of the stored crop
    crop_um: float  # micrometres covered by the stored crop
    box_scale: float  # crop side / box side when a record has no scale
    um_per_px: dict[str, float] = field(default_factory=dict)  # per source, when records lack one

    def scale_of(self, record: ImageRecord) -> float | None:
        """The record's own scale, else its optics preset, else its source's configured one, else ``None``."""
        domain = record.domain
        preset = optics_um_per_px(domain.magnification, domain.camera)
        return domain.um_per_px or preset or self.um_per_px.get(domain.source)


@lru_cache(maxsize=None)
def optics_um_per_px(magnification: str | None, camera: str | None) -> float | None:
    """um/px of an objective (times a camera factor) from ``configs/optics.yaml``; ``None`` if not listed."""
    if not magnification:
        return None
    optics = load_config_yaml("optics.yaml")
    scale = optics.get("magnifications", {}).get(magnification.upper())
    if scale is None:
        return None
    return float(scale) * float(optics.get("cameras", {}).get((camera or "").upper(), 1.0))


@dataclass
class CellSet:
    """N cropped cells: ``images`` uint8 ``(N, S, S, 3)`` and their targets and origins."""

    images: torch.Tensor
    type_allowed: torch.Tensor  # bool (N, T): types each label allows; all False = unknown
    attribute_targets: torch.Tensor  # int64 (N, A); -1 = unknown
    labels: list[str]  # the unified type as labelled (may be coarse)
    source_labels: list[str]
    sources: list[str]
    domains: list[str]
    paths: list[str]
    heads: dict[str, list[str]]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to_dict(self) -> dict:
        """Plain data for ``torch.save`` (read back with ``weights_only=True``)."""
        return {"version": CACHE_VERSION, **{k: getattr(self, k) for k in self.__dataclass_fields__}}

    @classmethod
    def from_dict(cls, data: dict) -> "CellSet":
        """Rebuild from :meth:`to_dict` output."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def concat_cell_sets(sets: Iterable[CellSet]) -> CellSet:
    """One set holding the cells of several (their heads must agree)."""
    sets = list(sets)
    if not sets:
        raise ValueError("no cell sets to join")
    heads = sets[0].heads
    if any(s.heads != heads for s in sets):
        raise ValueError("cell sets with different heads cannot be joined")
    return CellSet(
        torch.cat([s.images for s in sets]), torch.cat([s.type_allowed for s in sets]),
        torch.cat([s.attribute_targets for s in sets]),
        *[sum((getattr(s, name) for s in sets), []) for name in ("labels", "source_labels", "sources", "domains", "paths")],
        heads,
    )


def _usable_cells(record: ImageRecord, vocabulary: set[str]) -> list[int]:
    """Cells whose label the type head can learn from (non-WBC objects outside it are left out)."""
    tax = taxonomy()
    return [i for i, t in enumerate(record.cell_types) if any(m in vocabulary for m in tax.members(t))]


def _crop_record(record: ImageRecord, spec: CropSpec, vocabulary: set[str]) -> tuple[np.ndarray, list[int], list[str]]:
    """Crops of a record's usable cells, their cell indices, and one-line problems (no path)."""
    cells = _usable_cells(record, vocabulary)
    if not cells:
        return np.zeros((0, spec.size, spec.size, 3), np.uint8), [], []
    try:
        image = read_image(record.path)
    except ValueError as exc:
        return np.zeros((0, spec.size, spec.size, 3), np.uint8), [], [str(exc).replace(f"{Path(record.path)}: ", "", 1)]
    return _crop_image(image, record, cells, spec)


def _crop_image(
    image: np.ndarray, record: ImageRecord, cells: list[int], spec: CropSpec
) -> tuple[np.ndarray, list[int], list[str]]:
    if image.shape[:2] != (record.height, record.width):
        return np.zeros((0, spec.size, spec.size, 3), np.uint8), [], [
            f"image is {image.shape[1]}x{image.shape[0]}, the record says {record.width}x{record.height}"
        ]
    result = crop_cells(image, record.boxes_xyxy[cells], spec.size, spec.crop_um, spec.scale_of(record), spec.box_scale)
    problems = [f"cell {cells[i]}: {reason}" for i, reason in result.rejected]
    return result.crops, [cells[i] for i in result.kept], problems


def build_cell_set(
    records: Sequence[ImageRecord],
    heads: Mapping[str, Sequence[str]],
    spec: CropSpec,
    images: Sequence[np.ndarray] | None = None,
    threads: int = 2,
    progress: bool = True,
) -> tuple[CellSet, list[LoadIssue]]:
    """Crop and encode every usable cell of ``records`` (decoding each image once).

    ``images`` may give the decoded images (e.g. rendered on the fly) instead of the files.
    Unreadable images and rejected boxes are returned as issues.
    """
    from tqdm import tqdm

    heads = {k: list(v) for k, v in heads.items()}
    vocabulary = set(heads[TYPE_HEAD])
    if images is not None:
        if len(images) != len(records):
            raise ValueError(f"{len(images)} images for {len(records)} records")
        work = lambda i: _crop_image(images[i], records[i], _usable_cells(records[i], vocabulary), spec)  # noqa: E731
    else:
        work = lambda i: _crop_record(records[i], spec, vocabulary)  # noqa: E731
    crops, rows, issues = [], [], []
    with ThreadPoolExecutor(max(1, threads)) as pool:
        results = pool.map(work, range(len(records)))
        bar = tqdm(results, total=len(records), desc="cropping cells", disable=not progress or None, leave=False)
        for i, (stack, cells, problems) in enumerate(bar):
            issues.extend(LoadIssue(records[i].path, p) for p in problems)
            crops.append(stack)
            rows.extend((i, c) for c in cells)
    cell_types = [records[i].cell_types[c] for i, c in rows]
    attributes = [{k: v[c] for k, v in records[i].attributes.items()} for i, c in rows]
    type_allowed, attribute_targets = encode_targets(cell_types, attributes, heads)
    stacked = np.concatenate(crops) if crops else np.zeros((0, spec.size, spec.size, 3), np.uint8)
    cell_set = CellSet(
        images=torch.from_numpy(np.ascontiguousarray(stacked)),
        type_allowed=torch.from_numpy(type_allowed),
        attribute_targets=torch.from_numpy(attribute_targets),
        labels=cell_types,
        source_labels=[records[i].source_labels[c] for i, c in rows],
        sources=[records[i].domain.source for i, _ in rows],
        domains=[records[i].domain.name for i, _ in rows],
        paths=[records[i].path for i, _ in rows],
        heads=heads,
    )
    return cell_set, issues


def cell_set_key(records: Sequence[ImageRecord], heads: Mapping[str, Sequence[str]], spec: CropSpec) -> str:
    """A digest of everything a cell set depends on (records, labels, heads, crop spec, file sizes)."""
    digest = hashlib.sha1()
    settings = [CACHE_VERSION, {k: list(v) for k, v in heads.items()}, spec.__dict__]
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for record in records:
        path = Path(record.path)
        size = path.stat().st_size if path.is_file() else -1
        digest.update(json.dumps(
            [record.path, size, record.domain.um_per_px, record.domain.source, record.boxes_xyxy.round(2).tolist(),
             record.cell_types, record.attributes], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def save_cell_set(cell_set: CellSet, path: str | Path) -> Path:
    """Write a cell set to a ``.pt`` file atomically."""
    import io

    buffer = io.BytesIO()
    torch.save(cell_set.to_dict(), buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def load_cell_set(path: str | Path) -> CellSet:
    """Read a cell set written by :func:`save_cell_set` (``weights_only=True``)."""
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise ValueError(f"{path}: not a readable cell cache ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        raise ValueError(f"{path}: cell cache of another version; delete it to rebuild")
    return CellSet.from_dict(data)


def cached_cell_set(
    records: Sequence[ImageRecord],
    heads: Mapping[str, Sequence[str]],
    spec: CropSpec,
    cache_dir: str | Path,
    name: str,
    threads: int = 2,
) -> tuple[CellSet, list[LoadIssue]]:
    """:func:`build_cell_set`, reusing ``<cache_dir>/<name>-<key>.pt`` when its inputs are unchanged."""
    path = Path(cache_dir) / f"{name}-{cell_set_key(records, heads, spec)}.pt"
    if path.is_file():
        return load_cell_set(path), []
    cell_set, issues = build_cell_set(records, heads, spec, threads=threads)
    save_cell_set(cell_set, path)
    return cell_set, issues
