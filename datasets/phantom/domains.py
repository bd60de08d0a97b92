"""The twelve LeukemiaAttri acquisition domains and their physical pixel size."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from smearscope.datasets.records import CAMERAS, MAGNIFICATIONS, MICROSCOPES
from smearscope.datasets.schema import load_config_yaml

DOMAIN_NAMES: tuple[str, ...] = tuple(
    f"{microscope}_{magnification}_{camera}"
    for microscope in MICROSCOPES
    for magnification in MAGNIFICATIONS
    for camera in CAMERAS
)


@dataclass(frozen=True)
class DomainSpec:
    """One microscope / magnification / camera combination and its micrometres per pixel."""

    microscope: str
    magnification: str
    camera: str
    um_per_px: float

    @property
    def name(self) -> str:
        return f"{self.microscope}_{self.magnification}_{self.camera}"


@lru_cache(maxsize=1)
def _optics() -> dict:
    return load_config_yaml("optics.yaml")


def um_per_px(magnification: str, camera: str) -> float:
    """Micrometres per pixel from configs/optics.yaml (magnification scale times camera factor)."""
    optics = _optics()
    if magnification not in optics["magnifications"]:
        raise ValueError(f"unknown magnification {magnification!r}; known: {', '.join(optics['magnifications'])}")
    if camera not in optics["cameras"]:
        raise ValueError(f"unknown camera {camera!r}; known: {', '.join(optics['cameras'])}")
    return float(optics["magnifications"][magnification]) * float(optics["cameras"][camera])


def domain_spec(name: str) -> DomainSpec:
    """Parse ``H_100X_C1``-style names (``ValueError`` naming what is wrong)."""
    parts = str(name).strip().split("_")
    if len(parts) != 3:
        raise ValueError(f"domain {name!r} is not of the form <microscope>_<magnification>_<camera>, e.g. H_100X_C1")
    microscope, magnification, camera = parts[0].upper(), parts[1].upper(), parts[2].upper()
    if microscope not in MICROSCOPES:
        raise ValueError(f"domain {name!r}: unknown microscope {microscope!r}; known: {', '.join(MICROSCOPES)}")
    return DomainSpec(microscope, magnification, camera, um_per_px(magnification, camera))


def parse_domains(names: str | list[str] | tuple[str, ...] | None) -> tuple[DomainSpec, ...]:
    """Domains from a comma-separated string or a list; ``None`` or ``all`` gives all twelve."""
    if names is None or (isinstance(names, str) and names.strip().lower() in ("", "all")):
        names = DOMAIN_NAMES
    elif isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    specs = tuple(domain_spec(n) for n in names)
    if len({s.name for s in specs}) != len(specs):
        raise ValueError(f"domains list {', '.join(s.name for s in specs)} names a domain twice")
    return specs
