"""The phantom look, read from ``configs/phantom.yaml`` into typed dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from smearscope.datasets.config import from_dict
from smearscope.datasets.schema import load_config_yaml

WHITE_LEVEL = 0.995  # transmittance a blank slide gives on the reference lamp


def srgb_to_density(colour: tuple[float, ...] | list[float]) -> np.ndarray:
    """Optical density (R, G, B) of a layer that shows sRGB ``colour`` on a white lamp."""
    c = np.clip(np.asarray(colour, dtype=np.float64) / 255.0, 1e-4, 1.0)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.maximum(-np.log(linear / WHITE_LEVEL), 0.0).astype(np.float32)


@dataclass(frozen=True)
class GranuleKind:
    colour: tuple[float, float, float]
    radius_um: tuple[float, float]


@dataclass(frozen=True)
class GranuleFill:
    kind: str
    per_um2: float
    over_nucleus: bool = False


@dataclass(frozen=True)
class AuerRods:
    probability: float = 0.0
    count: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class ClassLook:
    """What a cell type looks like beyond its seven attributes."""

    irregular_nucleus: str = "indented"
    lobes: tuple[int, int] = (2, 3)
    nucleus_offset: float = 0.05
    outline_wobble: float = 0.025
    scalloped: bool = False
    cytoplasm_grey: float = 0.0
    cytoplasm_density: float = 1.0
    chromatin_tone: float = 1.0
    granules: list[GranuleFill] = field(default_factory=list)
    auer_rods: AuerRods = AuerRods()


@dataclass(frozen=True)
class Chromatin:
    density: float
    grain_um: float
    contrast: float


@dataclass(frozen=True)
class Spots:
    count: tuple[int, int]
    radius_um: tuple[float, float]
    clearing: float
    tint: float = 0.0


@dataclass(frozen=True)
class CellLook:
    """Attribute-driven dimensions shared by all types."""

    diameter_um: dict[str, tuple[float, float]]
    nucleus_fraction: dict[str, tuple[float, float]]
    lobed_extent: float
    chromatin: dict[str, Chromatin]
    nucleoli: Spots
    vacuoles: Spots
    basophilia: dict[str, float]
    cytoplasm_density: float
    cytoplasm_texture: float


@dataclass(frozen=True)
class SlideLook:
    rbc_diameter_um: tuple[float, float]
    rbc_coverage: tuple[float, float]
    rbc_pallor: tuple[float, float]
    rbc_oval_fraction: float
    rbc_clearance_um: float
    platelets_per_rbc: float
    debris_per_mm2: float
    wbc_per_mm2: float
    central_wbcs: tuple[int, int]
    wbc_gap_um: float
    stain_jitter: float


@dataclass(frozen=True)
class Microscope:
    blur: float
    defocus_um: float
    lamp: tuple[float, float, float]
    brightness: float
    vignetting: float
    unevenness: float
    flare: float
    noise: float


@dataclass(frozen=True)
class Camera:
    colour_matrix: list[list[float]]
    white_balance: tuple[float, float, float]
    gamma: float
    read_noise: float
    shot_noise: float
    jpeg_quality: int


@dataclass(frozen=True)
class PhantomConfig:
    """Everything in ``configs/phantom.yaml``; colours already converted to densities."""

    stains: dict[str, np.ndarray]
    granules: dict[str, GranuleKind]
    granule_density: dict[str, np.ndarray]
    cell: CellLook
    classes: dict[str, ClassLook]
    diagnoses: dict[str, dict[str, float]]
    slide: SlideLook
    psf_sigma_um: dict[str, float]
    microscopes: dict[str, Microscope]
    cameras: dict[str, Camera]

    def look(self, cell_type: str) -> ClassLook:
        """The look of ``cell_type`` (``ValueError`` if phantom.yaml has none)."""
        if cell_type not in self.classes:
            raise ValueError(f"phantom.yaml: no look for cell type {cell_type!r}; known: {', '.join(self.classes)}")
        return self.classes[cell_type]


def _section(raw: dict, name: str) -> dict:
    if name not in raw or not isinstance(raw[name], dict):
        raise ValueError(f"phantom.yaml: missing section {name!r}")
    return raw[name]


def parse_phantom_config(raw: dict) -> PhantomConfig:
    """Build a :class:`PhantomConfig` from the parsed YAML (``ValueError`` on bad content)."""
    cell_raw = dict(_section(raw, "cell"))
    cell_raw["chromatin"] = {k: from_dict(Chromatin, v, f"phantom.yaml:cell.chromatin.{k}")
                             for k, v in cell_raw.get("chromatin", {}).items()}
    cell_raw["diameter_um"] = {k: tuple(v) for k, v in cell_raw.get("diameter_um", {}).items()}
    cell_raw["nucleus_fraction"] = {k: tuple(v) for k, v in cell_raw.get("nucleus_fraction", {}).items()}
    cell = from_dict(CellLook, cell_raw, "phantom.yaml:cell")
    granules = {k: from_dict(GranuleKind, v, f"phantom.yaml:granules.{k}") for k, v in _section(raw, "granules").items()}
    classes = {k: from_dict(ClassLook, v or {}, f"phantom.yaml:classes.{k}") for k, v in _section(raw, "classes").items()}
    for name, look in classes.items():
        for fill in look.granules:
            if fill.kind not in granules:
                raise ValueError(f"phantom.yaml: classes.{name} uses unknown granule kind {fill.kind!r}")
    diagnoses = {dx: {t: float(w) for t, w in mix.items()} for dx, mix in _section(raw, "diagnoses").items()}
    for dx, mix in diagnoses.items():
        unknown = sorted(set(mix) - set(classes))
        if unknown:
            raise ValueError(f"phantom.yaml: diagnosis {dx} names types without a look: {', '.join(unknown)}")
    return PhantomConfig(
        stains={k: srgb_to_density(v) for k, v in _section(raw, "stains").items()},
        granules=granules,
        granule_density={k: srgb_to_density(g.colour) for k, g in granules.items()},
        cell=cell,
        classes=classes,
        diagnoses=diagnoses,
        slide=from_dict(SlideLook, _section(raw, "slide"), "phantom.yaml:slide"),
        psf_sigma_um={k: float(v["psf_sigma_um"]) for k, v in _section(raw, "magnifications").items()},
        microscopes={k: from_dict(Microscope, v, f"phantom.yaml:microscopes.{k}") for k, v in _section(raw, "microscopes").items()},
        cameras={k: from_dict(Camera, v, f"phantom.yaml:cameras.{k}") for k, v in _section(raw, "cameras").items()},
    )


@lru_cache(maxsize=1)
def phantom_config() -> PhantomConfig:
    """The shipped ``configs/phantom.yaml`` (cached)."""
    return parse_phantom_config(load_config_yaml("phantom.yaml"))
