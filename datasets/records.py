"""The validated record of one image and its cells.

Boxes are ``xyxy`` in absolute pixels of the image everywhere inside smearscope; format
modules convert at the edge. Every per-cell field has one entry per box.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from smearscope.datasets.schema import UNKNOWN, attribute_specs, taxonomy

MICROSCOPES = ("H", "L")
MAGNIFICATIONS = ("100X", "40X", "10X")
CAMERAS = ("C1", "C2")
SPLITS = ("train", "val", "test")
BOX_TOLERANCE_PX = 0.5


@dataclass(frozen=True)
class Domain:
    """Where an image comes from: source, optics, patient and physical scale."""

    source: str
    microscope: str | None = None
    magnification: str | None = None
    camera: str | None = None
    patient: str | None = None
    diagnosis: str | None = None
    um_per_px: float | None = None
    split: str | None = None

    @property
    def name(self) -> str:
        """``<microscope>_<magnification>_<camera>`` when known, else the source name."""
        parts = [p for p in (self.microscope, self.magnification, self.camera) if p]
        return "_".join(parts) if parts else self.source


@dataclass
class ImageRecord:
    """An image and its annotated (or predicted) cells.

    ``cell_types`` hold unified types (configs/taxonomy.yaml), ``source_labels`` the label
    as the source wrote it, ``attributes`` maps a qualified attribute name to one value per
    cell (``"unknown"`` is legal), ``scores`` are detection confidences for predictions.
    ``info`` keeps per-image extras a source provides beyond these (e.g. re-annotations,
    a mask path) as plain JSON values.
    """

    path: str
    width: int
    height: int
    domain: Domain
    boxes_xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float64))
    cell_types: list[str] = field(default_factory=list)
    source_labels: list[str] = field(default_factory=list)
    attributes: dict[str, list[str]] = field(default_factory=dict)
    scores: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes_xyxy = np.asarray(self.boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        self.cell_types = list(self.cell_types)
        self.source_labels = list(self.source_labels) if self.source_labels else list(self.cell_types)
        self.attributes = {k: list(v) for k, v in self.attributes.items()}
        self.info = dict(self.info)
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        self.validate()

    def __len__(self) -> int:
        return len(self.boxes_xyxy)

    def _fail(self, fieldname: str, message: str) -> None:
        raise ValueError(f"{self.path}: {fieldname}: {message}")

    def validate(self) -> None:
        """Raise ``ValueError`` naming the file and the field if anything is inconsistent."""
        if self.width <= 0 or self.height <= 0:
            self._fail("size", f"image size {self.width}x{self.height} is not positive")
        n = len(self.boxes_xyxy)
        lengths = {"cell_types": len(self.cell_types), "source_labels": len(self.source_labels)}
        lengths.update({f"attributes.{k}": len(v) for k, v in self.attributes.items()})
        if self.scores is not None:
            lengths["scores"] = len(self.scores)
        for name, length in lengths.items():
            if length != n:
                self._fail(name, f"has {length} entries for {n} boxes")
        if n:
            boxes = self.boxes_xyxy
            if not np.all(np.isfinite(boxes)):
                self._fail("boxes_xyxy", "contains a non-finite coordinate")
            widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            bad = np.flatnonzero((widths <= 0) | (heights <= 0))
            if bad.size:
                self._fail("boxes_xyxy", f"box {bad[0]} {boxes[bad[0]].tolist()} has zero or negative area")
            tol = BOX_TOLERANCE_PX
            outside = np.flatnonzero(
                (boxes[:, 0] < -tol) | (boxes[:, 1] < -tol)
                | (boxes[:, 2] > self.width + tol) | (boxes[:, 3] > self.height + tol)
            )
            if outside.size:
                i = outside[0]
                self._fail("boxes_xyxy", f"box {i} {boxes[i].tolist()} lies outside the {self.width}x{self.height} image")
        known_types = set(taxonomy().types)
        for i, cell_type in enumerate(self.cell_types):
            if cell_type not in known_types:
                self._fail("cell_types", f"cell {i} has unknown type {cell_type!r}")
        specs = attribute_specs()
        for name, values in self.attributes.items():
            if name not in specs:
                self._fail("attributes", f"unknown attribute {name!r}")
            legal = set(specs[name].values) | {UNKNOWN}
            for i, value in enumerate(values):
                if value not in legal:
                    self._fail(f"attributes.{name}", f"cell {i} has value {value!r}; legal: {', '.join(sorted(legal))}")

    @property
    def filename(self) -> str:
        """The image's file name without folders."""
        return Path(self.path).name

    def attribute(self, name: str, index: int) -> str:
        """The value of attribute ``name`` for cell ``index`` (``unknown`` if not annotated)."""
        values = self.attributes.get(name)
        return values[index] if values is not None else UNKNOWN

    def subset(self, keep: np.ndarray | list[int] | list[bool]) -> "ImageRecord":
        """A copy holding only the cells selected by an index list or boolean mask."""
        keep = np.asarray(keep)
        idx = np.flatnonzero(keep) if keep.dtype == bool else keep.astype(int).reshape(-1)
        return replace(
            self,
            boxes_xyxy=self.boxes_xyxy[idx],
            cell_types=[self.cell_types[i] for i in idx],
            source_labels=[self.source_labels[i] for i in idx],
            attributes={k: [v[i] for i in idx] for k, v in self.attributes.items()},
            scores=None if self.scores is None else self.scores[idx],
        )


@dataclass
class LoadIssue:
    """A file a batch loader could not use, and why (one line)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class LoadResult:
    """What a batch loader read: the good records and the issues it skipped."""

    records: list[ImageRecord] = field(default_factory=list)
    issues: list[LoadIssue] = field(default_factory=list)

    def extend(self, other: "LoadResult") -> None:
        """Append another result's records and issues."""
        self.records.extend(other.records)
        self.issues.extend(other.issues)
