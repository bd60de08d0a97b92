"""The vocabulary of phantom cells and the physical description of one white cell."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from smearscope.datasets.schema import schema_attributes, taxonomy

SCHEMA = "leukemiaattri"


@lru_cache(maxsize=1)
def attribute_names() -> tuple[str, ...]:
    """Qualified LeukemiaAttri attribute names in schema order."""
    return tuple(spec.qualified for spec in schema_attributes(SCHEMA))


@lru_cache(maxsize=1)
def source_labels() -> dict[str, str]:
    """Unified type -> LeukemiaAttri class name (e.g. ``artifact`` -> ``None``)."""
    return {unified: label for label, unified in taxonomy().sources[SCHEMA].items()}


def leukemiaattri_types() -> tuple[str, ...]:
    """The 14 unified types of the LeukemiaAttri classes, in class-id order."""
    return tuple(taxonomy().sources[SCHEMA].values())


@dataclass(frozen=True)
class Cell:
    """A white cell (or an artifact annotated as one) on the slide."""

    x_um: float
    y_um: float
    cell_type: str
    values: tuple[str, ...]  # one value per attribute_names(); "unknown" for artifacts
    diameter_um: float
    seed: int
    reach_um: float  # radius of a circle around the centre that holds the whole outline

    @property
    def source_label(self) -> str:
        return source_labels()[self.cell_type]

    @property
    def attributes(self) -> dict[str, str]:
        return dict(zip(attribute_names(), self.values))

    def value(self, name: str) -> str:
        """Value of one attribute by short (``cell_size``) or qualified name."""
        key = name if name.startswith(f"{SCHEMA}_") else f"{SCHEMA}_{name}"
        return self.attributes[key]
