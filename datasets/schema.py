"""Cell-type taxonomy and attribute schemas, read from the YAML files in ``smearscope.configs``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

UNKNOWN = "unknown"
SCHEMAS = ("leukemiaattri", "wbcatt")


def load_config_yaml(name: str) -> dict:
    """Return the parsed YAML file ``name`` shipped in ``smearscope.configs``."""
    text = resources.files("smearscope.configs").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


@dataclass(frozen=True)
class AttributeSpec:
    """One morphological attribute: qualified name, key in the source files, legal values."""

    schema: str
    name: str
    key: str
    values: tuple[str, ...]

    @property
    def qualified(self) -> str:
        """The name used inside smearscope, e.g. ``leukemiaattri_cell_size``."""
        return f"{self.schema}_{self.name}"

    def index(self, value: str) -> int:
        """Position of ``value`` in ``values`` (``ValueError`` if it is not one)."""
        return self.values.index(value)


@dataclass(frozen=True)
class Taxonomy:
    """The unified cell-type vocabulary and every source's label map."""

    types: tuple[str, ...]
    groups: dict[str, str]
    is_wbc: dict[str, bool]
    coarse: dict[str, tuple[str, ...]]
    sources: dict[str, dict[str, str]]

    def unify(self, source: str, label: str | int) -> str:
        """Map a source label to a unified type; ``ValueError`` names what is unknown."""
        if source not in self.sources:
            raise ValueError(f"unknown source {source!r}; known: {', '.join(sorted(self.sources))}")
        table = self.sources[source]
        text = str(label).strip()
        if text in table:
            return table[text]
        lowered = {k.lower(): v for k, v in table.items()}
        if text.lower() in lowered:
            return lowered[text.lower()]
        if text in self.types:
            return text
        raise ValueError(f"unknown {source} label {text!r}; known: {', '.join(table)}")

    def members(self, cell_type: str) -> tuple[str, ...]:
        """Fine types a label stands for: itself, or the members of a coarse type."""
        return self.coarse.get(cell_type, (cell_type,))

    def wbc_types(self) -> tuple[str, ...]:
        """Unified types that are white blood cells."""
        return tuple(t for t in self.types if self.is_wbc[t])


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    """The taxonomy from ``configs/taxonomy.yaml`` (cached)."""
    raw = load_config_yaml("taxonomy.yaml")
    types = tuple(raw["types"])
    sources = {src: {str(k): v for k, v in table.items()} for src, table in raw["sources"].items()}
    for src, table in sources.items():
        for label, target in table.items():
            if target not in types:
                raise ValueError(f"taxonomy.yaml: source {src} maps {label!r} to unknown type {target!r}")
    coarse = {k: tuple(v) for k, v in raw.get("coarse", {}).items()}
    return Taxonomy(
        types=types,
        groups={t: spec["group"] for t, spec in raw["types"].items()},
        is_wbc={t: bool(spec["wbc"]) for t, spec in raw["types"].items()},
        coarse=coarse,
        sources=sources,
    )


@lru_cache(maxsize=1)
def attribute_specs() -> dict[str, AttributeSpec]:
    """Every attribute of every schema, keyed by qualified name, in file order."""
    raw = load_config_yaml("attributes.yaml")
    specs: dict[str, AttributeSpec] = {}
    for schema in SCHEMAS:
        for name, spec in raw[schema].items():
            item = AttributeSpec(schema, name, str(spec["key"]), tuple(str(v) for v in spec["values"]))
            specs[item.qualified] = item
    return specs


def schema_attributes(schema: str) -> list[AttributeSpec]:
    """The attributes of one schema (``leukemiaattri`` or ``wbcatt``) in file order."""
    if schema not in SCHEMAS:
        raise ValueError(f"unknown attribute schema {schema!r}; known: {', '.join(SCHEMAS)}")
    return [s for s in attribute_specs().values() if s.schema == schema]


@lru_cache(maxsize=1)
def morphology_profiles() -> dict[str, dict[str, dict[str, tuple[float, ...]]]]:
    """Type-typical attribute distributions: schema -> type -> qualified attribute -> probs."""
    raw = load_config_yaml("morphology.yaml")
    specs = attribute_specs()
    out: dict[str, dict[str, dict[str, tuple[float, ...]]]] = {}
    for schema, per_type in raw.items():
        out[schema] = {}
        for cell_type, attrs in per_type.items():
            profile = {}
            for name, probs in attrs.items():
                spec = specs[f"{schema}_{name}"]
                if len(probs) != len(spec.values):
                    raise ValueError(f"morphology.yaml: {schema}.{cell_type}.{name} needs {len(spec.values)} values")
                profile[spec.qualified] = tuple(float(p) for p in probs)
            out[schema][cell_type] = profile
    return out
