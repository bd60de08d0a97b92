"""What a detector weights file needs to be used correctly: classes, input size, scale.

Stored as a JSON sidecar next to the weights (``best.pt`` -> ``best.pt.json``) and, for
ONNX, also inside the model's ``metadata_props`` under the key ``smearscope``, so an ONNX
file copied alone still tells the scale it was trained at.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from smearscope.datasets.io import read_json, write_json_atomic

ONNX_KEY = "smearscope"


@dataclass
class DetectorMetadata:
    """Class names (class-id order), tile size in pixels, and the um/px of the tiles."""

    class_names: list[str]
    imgsz: int
    um_per_px: float
    class_mode: str = "wbc"
    model: str = ""
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.class_names:
            raise ValueError("detector metadata: class_names is empty")
        if int(self.imgsz) <= 0 or float(self.um_per_px) <= 0:
            raise ValueError(f"detector metadata: imgsz {self.imgsz} and um_per_px {self.um_per_px} must be positive")
        self.imgsz, self.um_per_px = int(self.imgsz), float(self.um_per_px)

    @classmethod
    def from_json(cls, data: object, origin: str) -> "DetectorMetadata":
        """Build from parsed JSON; ``ValueError`` naming ``origin`` when malformed."""
        names = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(data, dict) or not {"class_names", "imgsz", "um_per_px"} <= set(data):
            raise ValueError(f"{origin}: detector metadata needs class_names, imgsz and um_per_px")
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{origin}: {exc}") from None


def metadata_path(weights: str | Path) -> Path:
    """The sidecar file of ``weights``: the same name with ``.json`` appended."""
    weights = Path(weights)
    return weights.with_name(weights.name + ".json")


def save_detector_metadata(metadata: DetectorMetadata, weights: str | Path) -> Path:
    """Write the sidecar JSON of ``weights``, atomically."""
    return write_json_atomic(metadata_path(weights), dataclasses.asdict(metadata))


def read_detector_metadata(weights: str | Path) -> DetectorMetadata:
    """The metadata of ``weights``: its sidecar JSON, else (ONNX) the embedded copy."""
    weights = Path(weights)
    sidecar = metadata_path(weights)
    if sidecar.is_file():
        return DetectorMetadata.from_json(read_json(sidecar), str(sidecar))
    if weights.suffix.lower() == ".onnx" and weights.is_file():
        import onnx

        try:
            model = onnx.load(str(weights), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and others for broken files
            raise ValueError(f"{weights}: not a readable ONNX model ({exc})") from None
        props = {p.key: p.value for p in model.metadata_props}
        if ONNX_KEY in props:
            try:
                data = json.loads(props[ONNX_KEY])
            except json.JSONDecodeError as exc:
                raise ValueError(f"{weights}: malformed {ONNX_KEY} metadata ({exc})") from None
            return DetectorMetadata.from_json(data, str(weights))
    raise ValueError(f"{weights}: no detector metadata (expected {sidecar.name} beside it)")


def embed_onnx_metadata(onnx_path: str | Path, metadata: DetectorMetadata) -> None:
    """Add (or replace) the ``smearscope`` entry of an ONNX file's ``metadata_props``."""
    import onnx

    onnx_path = Path(onnx_path)
    model = onnx.load(str(onnx_path))
    kept = [p for p in model.metadata_props if p.key != ONNX_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_KEY, json.dumps(dataclasses.asdict(metadata))
    onnx.save(model, str(onnx_path))
