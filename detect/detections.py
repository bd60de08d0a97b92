"""The validated result of a detector on one capture: boxes, scores and class ids."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from smearscope.datasets.records import Domain, ImageRecord


@dataclass
class Detections:
    """Detected cells: ``xyxy`` absolute pixels (float64, (N, 4)), ``scores`` (N,),
    ``class_ids`` (N,) int64. Every field has one entry per box; ``ValueError`` otherwise."""

    xyxy: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    class_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float64)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"Detections.xyxy: expected shape (N, 4), got {xyxy.shape}")
        if not np.all(np.isfinite(xyxy)):
            raise ValueError("Detections.xyxy: contains a non-finite coordinate")
        self.xyxy = xyxy
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        class_ids = np.asarray(self.class_ids).reshape(-1)
        if class_ids.size and not np.all(np.equal(np.mod(class_ids, 1), 0)):
            raise ValueError("Detections.class_ids: contains a non-integer value")
        self.class_ids = class_ids.astype(np.int64)
        n = len(xyxy)
        for name in ("scores", "class_ids"):
            length = len(getattr(self, name))
            if length != n:
                raise ValueError(f"Detections.{name}: has {length} entries for {n} boxes")

    def __len__(self) -> int:
        return len(self.xyxy)

    def select(self, index: np.ndarray | Sequence[int] | Sequence[bool]) -> "Detections":
        """The detections picked by an index array or a boolean mask, in that order."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = index.astype(np.int64).reshape(-1)
        return Detections(self.xyxy[index], self.scores[index], self.class_ids[index])

    @staticmethod
    def concatenate(parts: Sequence["Detections"]) -> "Detections":
        """All detections of ``parts`` in one object, in the given order."""
        if not parts:
            return Detections()
        return Detections(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.class_ids for p in parts]),
        )

    def to_record(
        self,
        path: str,
        width: int,
        height: int,
        domain: Domain,
        class_names: Sequence[str] | Mapping[int, str],
    ) -> ImageRecord:
        """An ``ImageRecord`` of these cells; ``class_names`` maps class id to a unified type."""
        names: list[str] = []
        for class_id in self.class_ids.tolist():
            try:
                if class_id < 0:
                    raise KeyError(class_id)
                names.append(class_names[class_id])
            except (IndexError, KeyError):
                raise ValueError(f"{path}: class id {class_id} has no name in class_names") from None
        return ImageRecord(
            path=str(path),
            width=int(width),
            height=int(height),
            domain=domain,
            boxes_xyxy=self.xyxy.copy(),
            cell_types=names,
            scores=self.scores.copy(),
        )
