"""Typed configuration of detector training: model, schedule, scale, augmentation, data.

Load it with :func:`load_detector_config` (``configs/detector.yaml`` plus ``key=value``
overrides, e.g. ``epochs=3 sources.bccd.path=/data/bccd sources.phantom.enabled=false``).

Paths: ``data_root`` is resolved against the current directory when relative, and each
source's relative ``path`` is resolved against ``data_root``.

Scale: every training image is resampled to ``um_per_px`` micrometres per pixel before it
is cut into ``imgsz`` x ``imgsz`` tiles, and inference resamples every capture to the same
``um_per_px`` (the value travels with the weights). The default 0.3125 um/px is the 40X
preset of ``configs/optics.yaml``: 40X fields are used as they are, 100X fields are
downscaled 2.5x (about 6x less compute, a 12 um WBC still spans about 38 px, well above
what the stride-8 head of a YOLO model resolves) and 10X fields are upscaled 4x (from
about 10 px per WBC), so no magnification needs a resampling factor above 4.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from smearscope.datasets.config import from_dict, load_config

FORMATS = ("voc", "yolo", "leukemiaattri", "coco")
ROLES = ("train", "val")
CLASS_MODES = ("wbc", "wbc+artifact")
GENERATORS = ("phantom",)


@dataclass
class AugmentConfig:
    """Augmentation: the ultralytics hyper-parameters of the same names, plus ``blur``.

    ``blur`` is the fraction of training tiles that get an extra defocused copy (Gaussian,
    sigma 0.6-2.0 px at the training scale), written when the dataset is built.
    """

    hsv_h: float = 0.05
    hsv_s: float = 0.7
    hsv_v: float = 0.4
    degrees: float = 10.0
    translate: float = 0.1
    scale: float = 0.25
    flipud: float = 0.5
    fliplr: float = 0.5
    mosaic: float = 1.0
    mixup: float = 0.0
    blur: float = 0.2

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise ValueError(f"augment.{f.name}: must not be negative, got {value}")
        for name in ("flipud", "fliplr", "mosaic", "mixup", "blur"):
            if getattr(self, name) > 1:
                raise ValueError(f"augment.{name}: is a probability, got {getattr(self, name)}")

    def ultralytics_args(self) -> dict[str, float]:
        """The keyword arguments ultralytics' trainer understands (all but ``blur``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "blur"}


@dataclass
class DataSource:
    """One annotated image collection and how it enters training and validation.

    ``splits`` maps a role (``train``/``val``) to the source's own split name (VOC
    ``ImageSets/Main/<name>.txt``, YOLO ``images/<name>``, LeukemiaAttri ``train``/``test``,
    COCO ``<name>.json`` beside ``path``); an empty value leaves the role out. Scale, first
    match wins: ``um_per_px``; ``magnification`` (and ``camera``) presets from
    ``configs/optics.yaml``; the record's own ``domain.um_per_px``; else it is estimated
    from the annotated RBC (or WBC) box sizes. ``generate: phantom`` draws
    ``generate_fields`` synthetic fields of ``generate_size`` pixels square, each in every
    domain of ``domains`` (default all twelve), when ``path`` is empty.
    """

    format: str
    path: str = ""
    splits: dict[str, str] = field(default_factory=lambda: {"train": "train", "val": "val"})
    repeat: int = 1
    um_per_px: float | None = None
    magnification: str | None = None
    camera: str | None = None
    domains: list[str] = field(default_factory=list)
    taxonomy_source: str | None = None
    class_names: list[str] = field(default_factory=list)
    generate: str | None = None
    generate_fields: int = 12
    generate_size: int = 640
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format: {self.format!r} is not one of {', '.join(FORMATS)}")
        self.splits = {str(k): ("" if v is None else str(v)) for k, v in (self.splits or {}).items()}
        unknown = sorted(set(self.splits) - set(ROLES))
        if unknown:
            raise ValueError(f"splits: unknown role(s) {', '.join(unknown)}; known: {', '.join(ROLES)}")
        if self.repeat < 1:
            raise ValueError(f"repeat: must be at least 1, got {self.repeat}")
        if self.um_per_px is not None and self.um_per_px <= 0:
            raise ValueError(f"um_per_px: must be positive, got {self.um_per_px}")
        if self.generate is not None and self.generate not in GENERATORS:
            raise ValueError(f"generate: {self.generate!r} is not one of {', '.join(GENERATORS)}")
        if self.generate_fields < 1:
            raise ValueError(f"generate_fields: must be at least 1, got {self.generate_fields}")
        if self.generate_size < 64:
            raise ValueError(f"generate_size: must be at least 64 pixels, got {self.generate_size}")
        if not self.path and self.generate is None:
            raise ValueError("path: empty, and no generator is named")

    def split(self, role: str) -> str:
        """The source split used for ``role`` ('' when the role is not used)."""
        return self.splits.get(role, "")


@dataclass
class DetectorConfig:
    """Everything that defines a detector training run; saved next to its weights.

    Each field is explained in ``configs/detector.yaml``. ``threads`` 0 means every core,
    ``nbs`` 0 means an optimizer step every batch, ``time_hours`` > 0 replaces ``epochs``
    by a time budget (ultralytics then derives the epoch count from the epoch time).
    """

    data_root: str = "../shared/data"
    name: str = "detector"
    model: str = "yolo11n.yaml"
    imgsz: int = 640
    epochs: int = 50
    time_hours: float = 0.0
    batch: int = 16
    patience: int = 20
    workers: int = 2
    seed: int = 0
    device: str = "cpu"
    threads: int = 0
    nbs: int = 0
    warmup_epochs: float = 3.0
    plots: bool = False
    um_per_px: float = 0.3125
    class_mode: str = "wbc"
    artifact_types: list[str] = field(default_factory=lambda: ["artifact", "smudge_cell"])
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    sources: dict[str, DataSource] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sources = {
            str(name): spec if isinstance(spec, DataSource) else _source(name, spec)
            for name, spec in (self.sources or {}).items()
        }
        if self.class_mode not in CLASS_MODES:
            raise ValueError(f"class_mode: {self.class_mode!r} is not one of {', '.join(CLASS_MODES)}")
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"imgsz: must be a positive multiple of 32, got {self.imgsz}")
        if self.um_per_px <= 0:
            raise ValueError(f"um_per_px: must be positive, got {self.um_per_px}")
        for name in ("epochs", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.time_hours < 0:
            raise ValueError(f"time_hours: must not be negative, got {self.time_hours}")
        if self.threads < 0 or self.nbs < 0:
            raise ValueError(f"threads and nbs: must not be negative, got {self.threads} and {self.nbs}")
        if not self.model:
            raise ValueError("model: empty; give an ultralytics model YAML name or path")

    @property
    def nominal_batch(self) -> int:
        """Images per optimizer step: ``nbs``, or ``batch`` when 0 (a step every batch)."""
        return self.nbs or self.batch

    @property
    def class_names(self) -> list[str]:
        """Detector class names, in class-id order."""
        return ["wbc", "artifact"] if self.class_mode == "wbc+artifact" else ["wbc"]

    def enabled_sources(self) -> dict[str, DataSource]:
        """The sources that take part, by name."""
        return {name: spec for name, spec in self.sources.items() if spec.enabled}

    def resolve_path(self, path: str, cwd: Path | None = None) -> Path:
        """A source path: absolute as given, relative against ``data_root`` (itself against ``cwd``)."""
        candidate = Path(path).expanduser()
        if candidate.is_absolute():
            return candidate
        root = Path(self.data_root).expanduser()
        if not root.is_absolute():
            root = (cwd or Path.cwd()) / root
        return (root / candidate).resolve()


def _source(name: str, spec: object) -> DataSource:
    """Build one ``DataSource`` from its YAML mapping, naming it in errors."""
    if not isinstance(spec, dict):
        raise ValueError(f"sources.{name}: expected a mapping, got {spec!r}")
    try:
        return from_dict(DataSource, spec, where=f"sources.{name}")
    except ValueError as exc:
        message = str(exc)
        prefix = f"sources.{name}"
        raise ValueError(message if message.startswith(prefix) else f"{prefix}.{message}") from None


def load_detector_config(path: str | Path | None = None, overrides: list[str] | None = None) -> DetectorConfig:
    """Load a ``DetectorConfig`` from YAML (or defaults) with ``key=value`` overrides.

    Every error is a one-line ``ValueError`` that starts with the file (or class) name.
    """
    where = str(path) if path is not None else DetectorConfig.__name__
    try:
        return load_config(DetectorConfig, path, overrides)
    except ValueError as exc:
        message = str(exc)
        raise ValueError(message if message.startswith(where) else f"{where}: {message}") from None


def default_config_path() -> Path:
    """The shipped ``configs/detector.yaml``."""
    from importlib import resources

    return Path(str(resources.files("smearscope.configs").joinpath("detector.yaml")))
