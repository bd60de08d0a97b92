"""The physical make-up of one white cell, built from its type and its seven attributes.

Everything here is in micrometres relative to the cell centre and depends only on the
:class:`~smearscope.datasets.phantom.cellspec.Cell`, never on a domain. Each part draws from
its own random stream, so changing one attribute leaves the other parts of the cell as
they were (same outline, same granules, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from smearscope.datasets.phantom.cellspec import Cell
from smearscope.datasets.phantom.geometry import Blob, Capsule, Circle, Difference, Ellipse, Inset, Intersection, Shape, Union
from smearscope.datasets.phantom.params import ClassLook, PhantomConfig, phantom_config
from smearscope.datasets.schema import UNKNOWN

# Random streams of one cell, one per part.
_SHAPE, _NUCLEOLI, _VACUOLES, _GRANULES, _RODS, _ARTIFACT = range(1, 7)


@dataclass(frozen=True, eq=False)
class Discs:
    """Round spots (nucleoli, vacuoles): centres and radii in micrometres."""

    x: np.ndarray
    y: np.ndarray
    r: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True, eq=False)
class GranuleSet:
    """Granules of one kind with the optical density they have at full strength."""

    kind: str
    x: np.ndarray
    y: np.ndarray
    r: np.ndarray
    density: np.ndarray


@dataclass(frozen=True, eq=False)
class Anatomy:
    """One cell in micrometres around its centre. The nucleus keeps ``nucleus_inset`` inside the outline."""

    kind: str                        # "cell", or an artifact's kind: "smudge", "clump", "ghost"
    outline: Blob
    nucleus: Shape | None
    nucleus_inset: float
    bridges: Shape | None            # thin chromatin filaments between nuclear lobes
    creases: Shape | None            # pale folds across a folded nucleus
    nucleus_density: float
    coarse_chromatin: bool
    chromatin_grain_um: float
    chromatin_contrast: float
    nucleoli: Discs
    nucleolus_clearing: float
    nucleolus_tint: float
    vacuoles: Discs
    vacuole_clearing: float
    granules: tuple[GranuleSet, ...]
    rods: Shape | None
    cytoplasm_od: np.ndarray
    cytoplasm_texture: float
    streak_angle: float | None       # smudged artifacts: direction of the smear streaks
    seed: int

    def nucleus_distance(self, x: np.ndarray, y: np.ndarray, outline_distance: np.ndarray | None = None) -> np.ndarray:
        """Signed distance to the nucleus as drawn (kept inside the outline); ``inf`` without one."""
        if self.nucleus is None:
            return np.full(np.shape(x), np.inf)
        if outline_distance is None:
            outline_distance = self.outline.distance(x, y)
        return np.maximum(self.nucleus.distance(x, y), outline_distance + self.nucleus_inset)


def _rng(cell: Cell, part: int) -> np.random.Generator:
    return np.random.default_rng([cell.seed, part])


def _no_discs() -> Discs:
    empty = np.zeros(0)
    return Discs(empty, empty, empty)


def _wobbly(rng: np.random.Generator, cx: float, cy: float, r: float, oval: float, wobble: float, modes: int = 5) -> Blob:
    """A near-round outline: mode 2 makes it oval, higher modes make it uneven."""
    amplitudes = [rng.uniform(0.0, oval)] + [rng.uniform(0.2, 1.0) * wobble / k for k in range(1, modes)]
    return Blob(cx, cy, r, tuple(amplitudes), tuple(rng.uniform(0, 2 * np.pi, modes)))


def _outline(rng: np.random.Generator, radius: float, look: ClassLook) -> Blob:
    blob = _wobbly(rng, 0.0, 0.0, radius, 0.05, look.outline_wobble, modes=5)
    if not look.scalloped:
        return blob
    extra = tuple(rng.uniform(0.01, 0.035, 3))
    return Blob(0.0, 0.0, radius, blob.amplitudes + extra, blob.phases + tuple(rng.uniform(0, 2 * np.pi, 3)))


def _lobed(rng: np.random.Generator, radius: float, look: ClassLook, extent: float) -> tuple[Shape, Shape]:
    """2-5 lobes, each elongated across a curved chain, joined by thin filaments."""
    count = look.lobes[0] + int(rng.binomial(look.lobes[1] - look.lobes[0], 0.45))
    reach = extent * radius
    lobe = float(np.clip(reach * rng.uniform(0.34, 0.4) * (1.2 if count == 2 else 1.0), 1.0, 2.6))
    squash = rng.uniform(0.15, 0.25)       # lobes are shorter along the chain than across it
    wobble = 0.09
    step = 2 * lobe * (1 - squash + wobble) + rng.uniform(0.5, 0.9)
    # Lobe centres on an arc, consecutive centres one step apart (chord), the chain spanning
    # at most 290 degrees.
    widest = min(0.8 * np.pi / max(count - 1, 1), 0.5 * np.pi)
    arc = max(reach - lobe, step / (2 * np.sin(widest)))
    turn = 2 * np.arcsin(min(1.0, step / (2 * arc)))
    start = rng.uniform(0, 2 * np.pi)
    angles = start + turn * np.arange(count)
    cx, cy = arc * np.cos(angles), arc * np.sin(angles)
    cx, cy = cx - cx.mean(), cy - cy.mean()
    lobes = []
    for i, (x, y) in enumerate(zip(cx, cy)):
        # The long axis of a lobe lies across the chain (the line through its neighbours).
        before, after = max(i - 1, 0), min(i + 1, count - 1)
        across = np.arctan2(cy[after] - cy[before], cx[after] - cx[before]) + np.pi / 2
        phases = (-2 * across,) + tuple(rng.uniform(0, 2 * np.pi, 2))
        amplitudes = (squash, wobble * rng.uniform(0.4, 1.0), 0.5 * wobble * rng.uniform(0.3, 1.0))
        lobes.append(Blob(float(x), float(y), lobe * rng.uniform(0.9, 1.05), amplitudes, phases))
    width = rng.uniform(0.09, 0.13)
    bridges = tuple(Capsule(float(cx[i]), float(cy[i]), float(cx[i + 1]), float(cy[i + 1]), width) for i in range(count - 1))
    return Union(tuple(lobes)), Union(bridges)


def _nucleus(rng: np.random.Generator, radius: float, rn: float, look: ClassLook, irregular: bool,
             config: PhantomConfig) -> tuple[Shape, Shape | None, Shape | None]:
    """Nucleus shape, lobe filaments and folds for a regular or the type's irregular form."""
    phi = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(phi), np.sin(phi)])
    form = look.irregular_nucleus if irregular else "regular"
    if form == "lobed":
        nucleus, bridges = _lobed(rng, radius, look, config.cell.lobed_extent)
        return nucleus, bridges, None
    offset = min(look.nucleus_offset * radius, max(0.0, 0.93 * radius - 1.08 * rn)) * rng.uniform(0.5, 1.0)
    ox, oy = -offset * direction
    if form == "regular":
        return _wobbly(rng, ox, oy, rn, 0.09, 0.03, modes=4), None, None
    if form == "indented":
        cut = rn * rng.uniform(0.35, 0.5)
        depth = cut * rng.uniform(0.5, 0.85)
        centre = np.array([ox, oy]) + direction * (rn + cut - depth)
        return Difference(_wobbly(rng, ox, oy, rn, 0.06, 0.03, modes=4), Circle(*centre, cut)), None, None
    if form == "kidney":
        a, b = rn * 1.1, rn * 0.84
        cut = rn * rng.uniform(0.5, 0.68)
        centre = np.array([ox, oy]) + direction * (b + cut * rng.uniform(0.15, 0.45))
        return Difference(Ellipse(ox, oy, a, b, phi + np.pi / 2), Circle(*centre, cut)), None, None
    if form == "folded":
        cut = rn * rng.uniform(0.35, 0.55)
        centre = np.array([ox, oy]) + direction * (rn + cut * rng.uniform(0.3, 0.6))
        body = Difference(_wobbly(rng, ox, oy, rn, 0.14, 0.16, modes=4), Circle(*centre, cut))
        folds = []
        for _ in range(int(rng.integers(2, 4))):
            a = rng.uniform(0, 2 * np.pi)
            p = np.array([ox, oy]) + rng.uniform(0, 0.45 * rn) * np.array([np.cos(a), np.sin(a)])
            t = rng.uniform(0, np.pi)
            half = rn * rng.uniform(0.35, 0.6) * np.array([np.cos(t), np.sin(t)])
            folds.append(Capsule(*(p - half), *(p + half), rng.uniform(0.3, 0.45)))
        return body, None, Union(tuple(folds))
    if form == "bilobed":
        shift = rn * rng.uniform(0.36, 0.46) * np.array([-direction[1], direction[0]])
        lobes = tuple(_wobbly(rng, ox + s * shift[0], oy + s * shift[1], rn * rng.uniform(0.62, 0.7), 0.1, 0.04, modes=3)
                      for s in (-1.0, 1.0))
        return Union(lobes), None, None
    raise ValueError(f"phantom.yaml: unknown irregular_nucleus form {form!r}")


def _inside(shape: Shape, x: np.ndarray, y: np.ndarray, margin: np.ndarray | float) -> np.ndarray:
    return shape.distance(x, y) < -np.asarray(margin)


def _discs(rng: np.random.Generator, count: int, radii: tuple[float, float], scale: float, region: Shape,
           radius: float, avoid: Shape | None = None, avoid_keep: float = 0.0) -> Discs:
    """Up to ``count`` non-overlapping discs inside ``region``, mostly off ``avoid``."""
    xs, ys, rs = [], [], []
    for _ in range(count * 30):
        if len(xs) == count:
            break
        r = rng.uniform(*radii) * scale
        x, y = rng.uniform(-radius, radius, 2)
        if region.distance(np.array(x), np.array(y)) > -1.05 * r:
            continue
        if avoid is not None and avoid.distance(np.array(x), np.array(y)) < 0 and rng.random() > avoid_keep:
            continue
        if any((x - ox) ** 2 + (y - oy) ** 2 < (r + orr + 0.15) ** 2 for ox, oy, orr in zip(xs, ys, rs)):
            continue
        xs.append(x), ys.append(y), rs.append(r)
    return Discs(np.array(xs), np.array(ys), np.array(rs))


def _granules(rng: np.random.Generator, look: ClassLook, config: PhantomConfig, outline: Blob, nucleus: Shape | None,
              radius: float) -> tuple[GranuleSet, ...]:
    sets = []
    for fill in look.granules:
        kind = config.granules[fill.kind]
        n = int(rng.poisson(fill.per_um2 * np.pi * radius ** 2))
        x, y = rng.uniform(-radius, radius, (2, n))
        r = rng.uniform(*kind.radius_um, n)
        keep = _inside(outline, x, y, 0.5 * r)
        if nucleus is not None and not fill.over_nucleus:
            keep &= nucleus.distance(x, y) > 0.3 * r
        sets.append(GranuleSet(fill.kind, x[keep], y[keep], r[keep], config.granule_density[fill.kind]))
    return tuple(sets)


def _auer_rods(rng: np.random.Generator, look: ClassLook, outline: Blob, nucleus: Shape) -> Shape | None:
    if rng.random() >= look.auer_rods.probability:
        return None
    count = int(rng.integers(look.auer_rods.count[0], look.auer_rods.count[1] + 1))
    for _ in range(60):
        x, y = rng.uniform(-outline.r, outline.r, 2)
        if outline.distance(np.array(x), np.array(y)) > -1.0 or nucleus.distance(np.array(x), np.array(y)) < 0.3:
            continue
        t = rng.uniform(0, np.pi)
        along, across = np.array([np.cos(t), np.sin(t)]), np.array([-np.sin(t), np.cos(t)])
        rods = []
        for i in range(count):
            centre = np.array([x, y]) + across * 0.45 * (i - (count - 1) / 2)
            half = along * rng.uniform(1.0, 2.2)
            ends = np.stack([centre - half, centre + half])
            while outline.distance(ends[:, 0], ends[:, 1]).max() > -0.3 and np.linalg.norm(half) > 0.4:
                half = half * 0.8
                ends = np.stack([centre - half, centre + half])
            rods.append(Capsule(*ends[0], *ends[1], rng.uniform(0.11, 0.16)))
        return Union(tuple(rods))
    return None


ARTIFACT_KINDS = ("smudge", "clump", "ghost")
ARTIFACT_SHARES = (0.6, 0.25, 0.15)


def _artifact_outline(rng: np.random.Generator, kind: str, radius: float) -> Blob:
    if kind == "smudge":
        amps = (rng.uniform(0.08, 0.2), rng.uniform(0.04, 0.12), rng.uniform(0.02, 0.08), rng.uniform(0.01, 0.05),
                rng.uniform(0.01, 0.04), rng.uniform(0.01, 0.03), rng.uniform(0.005, 0.02))
        return Blob(0.0, 0.0, radius, amps, tuple(rng.uniform(0, 2 * np.pi, 7)))
    if kind == "clump":
        return _wobbly(rng, 0.0, 0.0, 0.75 * radius, 0.25, 0.35, modes=5)
    return _wobbly(rng, 0.0, 0.0, radius, 0.06, 0.05)


def _artifact(cell: Cell, radius: float, config: PhantomConfig) -> Anatomy:
    """Smudge cells, stain-precipitate clumps and degenerated ghost cells (class "None")."""
    rng = _rng(cell, _ARTIFACT)
    kind = str(rng.choice(ARTIFACT_KINDS, p=ARTIFACT_SHARES))
    outline = _artifact_outline(rng, kind, radius)
    stains = config.stains
    base = dict(kind=kind, outline=outline, nucleus_inset=0.0, bridges=None, creases=None, nucleoli=_no_discs(),
                nucleolus_clearing=0.0, nucleolus_tint=0.0, vacuoles=_no_discs(), vacuole_clearing=0.0, rods=None,
                seed=cell.seed, chromatin_grain_um=0.5)
    if kind == "smudge":
        nucleus = Blob(0.0, 0.0, 0.9 * radius, outline.amplitudes, outline.phases)
        return Anatomy(nucleus=nucleus, nucleus_density=0.5, coarse_chromatin=False, chromatin_contrast=0.7, granules=(),
                       cytoplasm_od=0.15 * stains["smudge"], cytoplasm_texture=0.3,
                       streak_angle=float(rng.uniform(0, np.pi)), **base)
    if kind == "clump":
        n = int(4.0 * np.pi * radius ** 2)
        x, y = rng.normal(0, 0.4 * radius, (2, n))
        r = rng.uniform(0.15, 0.45, n)
        keep = _inside(outline, x, y, 0.2 * r)
        clump = GranuleSet("debris", x[keep], y[keep], r[keep], 0.9 * stains["debris"])
        return Anatomy(nucleus=None, nucleus_density=0.0, coarse_chromatin=False, chromatin_contrast=0.0,
                       granules=(clump,), cytoplasm_od=0.3 * stains["cytoplasm_grey"], cytoplasm_texture=0.4,
                       streak_angle=None, **base)
    # A degenerating cell: pale cytoplasm around a few dense, round nuclear fragments.
    fragments = []
    for _ in range(int(rng.integers(2, 5))):
        r = rng.uniform(0.9, 1.6)
        angle, distance = rng.uniform(0, 2 * np.pi), rng.uniform(0.1, 0.55) * max(radius - r, 0.5)
        fragments.append(Circle(distance * np.cos(angle), distance * np.sin(angle), r))
    return Anatomy(nucleus=Union(tuple(fragments)), nucleus_density=1.4, coarse_chromatin=True,
                   chromatin_contrast=0.3, granules=(), cytoplasm_od=0.6 * stains["cytoplasm_pink"],
                   cytoplasm_texture=0.2, streak_angle=None, **base)


def outline_of(cell: Cell, config: PhantomConfig | None = None) -> Blob:
    """The cell's outline alone (the first thing its anatomy draws), cheap enough for placing cells."""
    config = config or phantom_config()
    radius = 0.5 * cell.diameter_um
    if cell.cell_type == "artifact":
        rng = _rng(cell, _ARTIFACT)
        return _artifact_outline(rng, str(rng.choice(ARTIFACT_KINDS, p=ARTIFACT_SHARES)), radius)
    return _outline(_rng(cell, _SHAPE), radius, config.look(cell.cell_type))


def build_anatomy(cell: Cell, config: PhantomConfig | None = None) -> Anatomy:
    """The cell's outline, nucleus, nucleoli, vacuoles, granules and colours from its attributes."""
    config = config or phantom_config()
    radius = 0.5 * cell.diameter_um
    if cell.cell_type == "artifact":
        return _artifact(cell, radius, config)
    look = config.look(cell.cell_type)
    value = cell.value
    shape_rng = _rng(cell, _SHAPE)
    outline = _outline(shape_rng, radius, look)
    low, high = config.cell.nucleus_fraction.get(value("cytoplasm"), (0.66, 0.8))
    rn = radius * shape_rng.uniform(low, high)
    raw_nucleus, bridges, creases = _nucleus(shape_rng, radius, rn, look, value("nuclear_shape") == "irregular", config)
    # The nucleus never pokes out of the cell: it keeps a thin rim of cytoplasm.
    inset = 0.05 * radius
    nucleus = Intersection(raw_nucleus, Inset(outline, inset))

    spots = config.cell.nucleoli
    nucleoli = _no_discs()
    if value("nucleolus") == "prominent":
        rng = _rng(cell, _NUCLEOLI)
        count = int(rng.integers(spots.count[0], spots.count[1] + 1))
        nucleoli = _discs(rng, count, spots.radius_um, min(1.0, rn / 4.0), nucleus, radius)
    holes = config.cell.vacuoles
    vacuoles = _no_discs()
    if value("cytoplasmic_vacuoles") == "prominent":
        rng = _rng(cell, _VACUOLES)
        count = int(rng.integers(holes.count[0], holes.count[1] + 1))
        vacuoles = _discs(rng, count, holes.radius_um, min(1.0, radius / 6.0), outline, radius, avoid=nucleus, avoid_keep=0.3)

    granules = _granules(_rng(cell, _GRANULES), look, config, outline, nucleus, radius)
    rods = _auer_rods(_rng(cell, _RODS), look, outline, nucleus)
    chromatin = config.cell.chromatin[value("nuclear_chromatin") if value("nuclear_chromatin") != UNKNOWN else "open"]
    blue = config.cell.basophilia.get(value("cytoplasmic_basophilia"), 0.4)
    stains = config.stains
    tint = blue * stains["cytoplasm_blue"] + (1 - blue) * stains["cytoplasm_pink"]
    cytoplasm_od = config.cell.cytoplasm_density * look.cytoplasm_density * ((1 - look.cytoplasm_grey) * tint + look.cytoplasm_grey * stains["cytoplasm_grey"])
    return Anatomy(
        kind="cell", outline=outline, nucleus=raw_nucleus, nucleus_inset=inset, bridges=bridges, creases=creases,
        nucleus_density=chromatin.density * look.chromatin_tone, coarse_chromatin=value("nuclear_chromatin") == "coarse",
        chromatin_grain_um=chromatin.grain_um, chromatin_contrast=chromatin.contrast,
        nucleoli=nucleoli, nucleolus_clearing=spots.clearing, nucleolus_tint=spots.tint,
        vacuoles=vacuoles, vacuole_clearing=holes.clearing, granules=granules, rods=rods,
        cytoplasm_od=cytoplasm_od.astype(np.float32), cytoplasm_texture=config.cell.cytoplasm_texture,
        streak_angle=None, seed=cell.seed,
    )


@lru_cache(maxsize=1024)
def _cached_anatomy(cell_type: str, values: tuple[str, ...], diameter_um: float, seed: int) -> Anatomy:
    return build_anatomy(Cell(0.0, 0.0, cell_type, values, diameter_um, seed, 0.0), phantom_config())


def anatomy_of(cell: Cell, config: PhantomConfig | None = None) -> Anatomy:
    """:func:`build_anatomy`, memoised for the shipped config (a cell is drawn in many domains).

    The anatomy depends on the cell's type, attributes, size and seed, not on its position.
    """
    if config is None or config is phantom_config():
        return _cached_anatomy(cell.cell_type, cell.values, cell.diameter_um, cell.seed)
    return build_anatomy(cell, config)
