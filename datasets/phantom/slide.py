"""The physical scene of a synthetic smear: cells placed in micrometres, independent of optics.

A :class:`Slide` holds every white cell (type, seven attributes, size, texture seed), red
cells, platelets and stain debris. Rendering it in any domain (field.py) reads the same
scene, so a cell keeps its class and attributes in every domain, as in LeukemiaAttri where
labels were transferred from 100X to the other magnifications.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from smearscope.datasets.phantom.anatomy import outline_of
from smearscope.datasets.phantom.cellspec import SCHEMA, Cell, attribute_names, leukemiaattri_types, source_labels
from smearscope.datasets.phantom.domains import DomainSpec, parse_domains
from smearscope.datasets.phantom.noise import lattice_noise
from smearscope.datasets.phantom.params import PhantomConfig, phantom_config
from smearscope.datasets.schema import UNKNOWN, morphology_profiles, schema_attributes

@dataclass(frozen=True, eq=False)
class RedCells:
    x: np.ndarray
    y: np.ndarray
    diameter: np.ndarray
    aspect: np.ndarray
    angle: np.ndarray
    pallor: np.ndarray
    tone: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True, eq=False)
class Specks:
    """Small round objects (platelets, stain debris): centre, radius, tone."""

    x: np.ndarray
    y: np.ndarray
    r: np.ndarray
    tone: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True, eq=False)
class Slide:
    """A rectangle of smear, ``width_um`` x ``height_um``, with everything on it."""

    seed: int
    width_um: float
    height_um: float
    diagnosis: str
    cells: tuple[Cell, ...]
    red_cells: RedCells
    platelets: Specks
    debris: Specks
    stain_gain: float

    @property
    def center_um(self) -> tuple[float, float]:
        return (0.5 * self.width_um, 0.5 * self.height_um)


def sample_attributes(cell_type: str, rng: np.random.Generator) -> tuple[str, ...]:
    """Attribute values drawn from the type-typical distributions of morphology.yaml."""
    profiles = morphology_profiles()[SCHEMA]
    if cell_type not in profiles:
        return tuple(UNKNOWN for _ in attribute_names())
    values = []
    for spec in schema_attributes(SCHEMA):
        probs = np.asarray(profiles[cell_type][spec.qualified], dtype=np.float64)
        values.append(spec.values[int(rng.choice(len(probs), p=probs / probs.sum()))])
    return tuple(values)


def typical_attributes(cell_type: str) -> tuple[str, ...]:
    """The most likely value of each attribute for ``cell_type`` (``unknown`` without a profile)."""
    profiles = morphology_profiles()[SCHEMA]
    if cell_type not in profiles:
        return tuple(UNKNOWN for _ in attribute_names())
    return tuple(spec.values[int(np.argmax(profiles[cell_type][spec.qualified]))] for spec in schema_attributes(SCHEMA))


def check_attributes(cell_type: str, values: dict[str, str] | None, rng: np.random.Generator) -> tuple[str, ...]:
    """Complete a partial ``{name: value}`` mapping with sampled values; reject unknown names and values."""
    base = list(sample_attributes(cell_type, rng))
    if not values:
        return tuple(base)
    names = attribute_names()
    specs = {s.qualified: s for s in schema_attributes(SCHEMA)}
    for name, value in values.items():
        key = name if name.startswith(f"{SCHEMA}_") else f"{SCHEMA}_{name}"
        if key not in specs:
            raise ValueError(f"unknown LeukemiaAttri attribute {name!r}; known: {', '.join(s.name for s in specs.values())}")
        if value not in specs[key].values and value != UNKNOWN:
            raise ValueError(f"attribute {name}: value {value!r} is not one of {', '.join(specs[key].values)}")
        base[names.index(key)] = value
    return tuple(base)


def cell_diameter(values: tuple[str, ...], rng: np.random.Generator, config: PhantomConfig) -> float:
    """A physical diameter inside the range of the cell's size class."""
    size = values[attribute_names().index(f"{SCHEMA}_cell_size")]
    low, high = config.cell.diameter_um.get(size, (9.0, 15.0))
    return float(rng.uniform(low, high))


def new_cell(cell_type: str, x_um: float, y_um: float, rng: np.random.Generator, config: PhantomConfig,
             attributes: dict[str, str] | None = None, diameter_um: float | None = None) -> Cell:
    """A cell of ``cell_type`` with attributes drawn (or given) and a texture seed."""
    if cell_type not in source_labels():
        raise ValueError(f"cell type {cell_type!r} is not a LeukemiaAttri class; known: {', '.join(leukemiaattri_types())}")
    values = check_attributes(cell_type, attributes, rng)
    diameter = cell_diameter(values, rng, config)  # drawn always, so the seed below does not shift
    if diameter_um is not None:
        if not 3.0 <= float(diameter_um) <= 40.0:
            raise ValueError(f"cell diameter {diameter_um} um is outside 3-40 um")
        diameter = float(diameter_um)
    cell = Cell(float(x_um), float(y_um), cell_type, values, diameter, int(rng.integers(0, 2**31 - 1)), 0.0)
    x0, y0, x1, y1 = outline_of(cell, config).bounds()
    return dataclasses.replace(cell, reach_um=float(max(-x0, -y0, x1, y1)))


class _Placer:
    """Accepts cell positions that keep a gap to earlier cells and stay off field borders."""

    def __init__(self, width: float, height: float, gap: float, windows: list[tuple[float, float, float, float]]):
        self.width, self.height, self.gap, self.windows = width, height, gap, windows
        self.bucket = 32.0
        self.grid: dict[tuple[int, int], list[tuple[float, float, float]]] = {}

    def fits(self, x: float, y: float, reach: float) -> bool:
        if x - reach < 0 or y - reach < 0 or x + reach > self.width or y + reach > self.height:
            return False
        for x0, y0, x1, y1 in self.windows:
            inside = x - reach >= x0 and x + reach <= x1 and y - reach >= y0 and y + reach <= y1
            outside = x + reach <= x0 or x - reach >= x1 or y + reach <= y0 or y - reach >= y1
            if not (inside or outside):
                return False
        bx, by = int(x // self.bucket), int(y // self.bucket)
        for i in (bx - 1, bx, bx + 1):
            for j in (by - 1, by, by + 1):
                for ox, oy, oreach in self.grid.get((i, j), ()):
                    if (x - ox) ** 2 + (y - oy) ** 2 < (reach + oreach + self.gap) ** 2:
                        return False
        return True

    def add(self, x: float, y: float, reach: float) -> None:
        self.grid.setdefault((int(x // self.bucket), int(y // self.bucket)), []).append((x, y, reach))


def _field_windows(domains: tuple[DomainSpec, ...], field_px: int, cx: float, cy: float) -> list[tuple[float, float, float, float]]:
    sides = sorted({round(field_px * d.um_per_px, 6) for d in domains})
    return [(cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2) for s in sides]


def _place_cells(rng: np.random.Generator, config: PhantomConfig, width: float, height: float, mix: dict[str, float],
                 density_per_mm2: float, windows: list[tuple[float, float, float, float]]) -> list[Cell]:
    types = list(mix)
    weights = np.asarray([mix[t] for t in types], dtype=np.float64)
    weights /= weights.sum()
    placer = _Placer(width, height, config.slide.wbc_gap_um, windows)
    cells: list[Cell] = []

    def try_place(region: tuple[float, float, float, float], attempts: int) -> None:
        cell = new_cell(types[int(rng.choice(len(types), p=weights))], 0.0, 0.0, rng, config)
        reach = cell.reach_um
        for _ in range(attempts):
            x = float(rng.uniform(region[0] + reach, max(region[0] + reach, region[2] - reach)))
            y = float(rng.uniform(region[1] + reach, max(region[1] + reach, region[3] - reach)))
            if placer.fits(x, y, reach):
                placer.add(x, y, reach)
                cells.append(dataclasses.replace(cell, x_um=x, y_um=y))
                return

    if windows:
        low, high = config.slide.central_wbcs
        for _ in range(int(rng.integers(low, high + 1))):
            try_place(windows[0], attempts=60)
    expected = density_per_mm2 * width * height / 1e6
    for _ in range(int(rng.poisson(expected))):
        try_place((0.0, 0.0, width, height), attempts=12)
    return cells


def _red_cells(seed: int, rng: np.random.Generator, config: PhantomConfig, width: float, height: float) -> RedCells:
    """Red cells on a jittered hexagonal lattice, thinned by a smooth smear-thickness field."""
    look = config.slide
    mean, sd = look.rbc_diameter_um
    spacing = mean * 1.02
    row = spacing * np.sqrt(3) / 2
    margin = 2 * mean
    rows = np.arange(-margin, height + margin, row)
    cols = np.arange(-margin, width + margin, spacing)
    gx, gy = np.meshgrid(cols, rows)
    gx = gx + (np.arange(len(rows)) % 2)[:, None] * spacing / 2
    x = gx.ravel() + rng.normal(0, 0.24 * spacing, gx.size)
    y = gy.ravel() + rng.normal(0, 0.24 * spacing, gy.size)
    thickness = 0.5 + 0.5 * lattice_noise(seed + 101, x, y, 70.0)
    keep = rng.random(x.size) < look.rbc_coverage[0] + (look.rbc_coverage[1] - look.rbc_coverage[0]) * thickness
    x, y = x[keep], y[keep]
    n = len(x)
    oval = rng.random(n) < look.rbc_oval_fraction
    return RedCells(
        x=x, y=y,
        diameter=np.clip(rng.normal(mean, sd, n), mean - 3 * sd, mean + 3 * sd),
        aspect=np.where(oval, rng.uniform(0.68, 0.86, n), rng.uniform(0.93, 1.0, n)),
        angle=rng.uniform(0, np.pi, n),
        pallor=rng.uniform(*look.rbc_pallor, n),
        tone=rng.normal(1.0, 0.06, n),
    )


def _clear_under(cells: list[Cell], x: np.ndarray, y: np.ndarray, extra: np.ndarray | float) -> np.ndarray:
    """Mask of points that do not lie under a white cell (plus ``extra`` um)."""
    keep = np.ones(len(x), dtype=bool)
    if not cells or not len(x):
        return keep
    order = np.argsort(x, kind="stable")
    xs = x[order]
    extra = np.broadcast_to(np.asarray(extra, dtype=np.float64), x.shape)
    reach_max = float(extra.max()) if extra.size else 0.0
    for cell in cells:
        r = 0.5 * cell.diameter_um + reach_max
        lo, hi = np.searchsorted(xs, [cell.x_um - r, cell.x_um + r])
        idx = order[lo:hi]
        near = np.hypot(x[idx] - cell.x_um, y[idx] - cell.y_um) < 0.5 * cell.diameter_um + extra[idx]
        keep[idx[near]] = False
    return keep


def make_slide(
    seed: int,
    width_um: float | None = None,
    height_um: float | None = None,
    *,
    diagnosis: str | None = None,
    domains: str | list[str] | tuple[str, ...] | None = None,
    field_px: int = 640,
    wbc_per_mm2: float | None = None,
    config: PhantomConfig | None = None,
) -> Slide:
    """A seeded smear: white cells of the diagnosis' class mix, red cells, platelets, debris.

    Without a size, the slide is as large as the widest ``field_px`` field of ``domains``
    (default all twelve); white cells are then kept off every such field's border and at
    least one lies in the smallest field, so a 100X field always shows a white cell.
    """
    config = config or phantom_config()
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 1])
    diagnoses = sorted(config.diagnoses)
    if diagnosis is None:
        diagnosis = diagnoses[int(rng.integers(len(diagnoses)))]
    if diagnosis not in config.diagnoses:
        raise ValueError(f"unknown diagnosis {diagnosis!r}; known: {', '.join(diagnoses)}")
    windows: list[tuple[float, float, float, float]] = []
    if width_um is None or height_um is None:
        if width_um is not None or height_um is not None:
            raise ValueError("give both width_um and height_um, or neither")
        specs = parse_domains(domains)
        side = max(field_px * d.um_per_px for d in specs)
        width_um = height_um = side
        windows = _field_windows(specs, field_px, side / 2, side / 2)
    elif domains is not None:
        windows = _field_windows(parse_domains(domains), field_px, width_um / 2, height_um / 2)
    if width_um <= 0 or height_um <= 0:
        raise ValueError(f"slide size {width_um}x{height_um} um is not positive")
    density = config.slide.wbc_per_mm2 if wbc_per_mm2 is None else float(wbc_per_mm2)
    cells = _place_cells(rng, config, width_um, height_um, config.diagnoses[diagnosis], density, windows)
    return _with_background(seed, rng, config, width_um, height_um, diagnosis, cells)


def _with_background(seed: int, rng: np.random.Generator, config: PhantomConfig, width: float, height: float,
                     diagnosis: str, cells: list[Cell], background: bool = True) -> Slide:
    look = config.slide
    rbc = _red_cells(seed, rng, config, width, height)
    keep = _clear_under(cells, rbc.x, rbc.y, 0.4 * rbc.diameter + look.rbc_clearance_um) & background
    rbc = RedCells(*(getattr(rbc, f)[keep] for f in ("x", "y", "diameter", "aspect", "angle", "pallor", "tone")))
    n_plt = int(rng.poisson(look.platelets_per_rbc * len(rbc)))
    px, py = rng.uniform(0, width, n_plt), rng.uniform(0, height, n_plt)
    keep = _clear_under(cells, px, py, 0.5)
    platelets = Specks(px[keep], py[keep], rng.uniform(0.8, 1.5, n_plt)[keep], rng.uniform(0.8, 1.2, n_plt)[keep])
    n_deb = int(rng.poisson(look.debris_per_mm2 * width * height / 1e6)) if background else 0
    radius = np.where(rng.random(n_deb) < 0.85, rng.uniform(0.12, 0.35, n_deb), rng.uniform(0.35, 0.9, n_deb))
    debris = Specks(rng.uniform(0, width, n_deb), rng.uniform(0, height, n_deb), radius, rng.uniform(0.5, 1.3, n_deb))
    gain = float(np.clip(rng.normal(1.0, look.stain_jitter), 0.75, 1.25))
    return Slide(seed, float(width), float(height), diagnosis, tuple(cells), rbc, platelets, debris, gain)


def single_cell_slide(
    seed: int,
    cell_type: str,
    attributes: dict[str, str] | None = None,
    *,
    extent_um: float = 40.0,
    diameter_um: float | None = None,
    typical: bool = False,
    background: bool = True,
    config: PhantomConfig | None = None,
) -> Slide:
    """A small slide with one cell of ``cell_type`` at its centre.

    ``attributes`` fixes some values (``{"cytoplasmic_basophilia": "moderate"}``); the rest are
    drawn from the type's profile, or set to its most typical values with ``typical=True``.
    The cell's texture seed depends only on ``seed``, so two slides that differ in one
    attribute show the same cell otherwise. ``background=False`` leaves out red cells and
    platelets.
    """
    config = config or phantom_config()
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 2])
    if typical:
        attributes = {**dict(zip(attribute_names(), typical_attributes(cell_type))), **(attributes or {})}
    cell = new_cell(cell_type, extent_um / 2, extent_um / 2, rng, config, attributes, diameter_um)
    diagnosis = next((dx for dx, mix in sorted(config.diagnoses.items()) if cell_type in mix), sorted(config.diagnoses)[0])
    return _with_background(seed, rng, config, extent_um, extent_um, diagnosis, [cell], background=background)
