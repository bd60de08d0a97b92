"""Physical scale of a capture: from optics presets, or measured from its red cells.

Red blood cells are about 7.5 um across everywhere, so their size in pixels gives the
capture's micrometres per pixel. The measurement works on optical density (absorbance
relative to the background, per channel), which removes brightness and colour casts:

1. background = per-channel median of the brightest 10 % of pixels, block by block on a
   coarse grid and interpolated (uneven illumination cancels); optical density
   ``OD = sum_c log(background_c / pixel_c)``, and the red channel's share of it (hue);
2. single red cells are the components of ``OD > threshold`` (holes such as the central
   pallor filled) that do not touch the border, are not tiny, are convex and round (not
   overlapping pairs or clumps), and have the hue of most of the stained area (red cells
   cover most of it; purple nuclei and platelets do not pass);
3. the threshold: among fractions of Otsu's, the one whose single red cells cover the
   most pixels; then half of their peak OD (half-maximum edges are not biased by optical
   blur, and neither overlaps nor nuclei raise it);
4. specks under half the area-weighted median diameter are dropped; the median of the
   rest is the RBC diameter.

Large captures are measured on a fixed grid of regions read through the reader. The
confidence grows with the number of cells measured (full at 50) and falls with the
spread of their sizes (robust relative spread 0.1 or less: full; 0.3 or more: none).

Crowded fields, where red cells touch and overlap so that few stand alone, are measured by
granulometry instead when it is the more trustworthy: the stained area at Otsu's threshold
(holes filled) is opened with discs of growing radius; a touching or overlapping cell
survives every disc smaller than itself, so the area left falls steeply at the red-cell
radius. The radius where half the area is gone gives the diameter (times a calibration of
1.02: on 640 px phantom fields of 7.5 um cells in eight 100X and 40X domains, the half-area
diameter read 7.06-7.57 um, median 7.36; sparse fields give none and are measured by their
single cells). It must fit at least ``MIN_CELLS`` times in the stained area and lie within
the red-cell sizes the optics presets allow; its confidence falls when few of the regions
measure or when they disagree. When 20 % of the area is still left at 1.6 times
that radius (large stained masses, a thick smear), there is no estimate. Its confidence is at
most ``GRANULOMETRY_CONFIDENCE``, below what tells a sure scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smearscope.detect.capture import ArrayCapture, CaptureReader

MIN_CELL_AREA_PX = 12
MIN_CELLS = 3
MIN_SOLIDITY = 0.92
MIN_AXIS_RATIO = 0.8
MIN_OD_CONTRAST = 0.08
HUE_TOLERANCE = 0.08
OTSU_FRACTIONS = (0.25, 0.35, 0.5, 0.7, 1.0)
REGION_SIZE_PX = 1024
BACKGROUND_BLOCK_PX = 200
MAX_BACKGROUND_GRID = 4
MAX_REGIONS = 9
GRANULOMETRY_CALIBRATION = 1.02
GRANULOMETRY_CONFIDENCE = 0.3
GRANULOMETRY_STEPS = 48  # disc radii tried, geometric from 1 px to a fifth of the region
GRANULOMETRY_MAX_FALL = 1.6  # radius where 20 % of the area is left over the radius where 50 % is


@dataclass(frozen=True)
class ScaleEstimate:
    """A measured scale: ``um_per_px``, the median RBC diameter in pixels, how many single
    RBCs were measured, and a confidence in [0, 1] (more cells and a tighter size
    distribution give more)."""

    um_per_px: float
    rbc_diameter_px: float
    n_cells: int
    confidence: float
    method: str = "single red cells"


def _optics(optics: str | Path | None) -> dict:
    """The optics presets: the packaged configs/optics.yaml or a user YAML file."""
    import yaml

    if optics is None:
        from smearscope.datasets.schema import load_config_yaml

        return load_config_yaml("optics.yaml")
    path = Path(optics)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: optics file not found") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("magnifications"), dict):
        raise ValueError(f"{path}: expected a 'magnifications' mapping")
    return data


def _lookup(table: dict, key: str, what: str) -> float:
    wanted = str(key).strip().upper()
    for name, value in table.items():
        if str(name).upper() in (wanted, f"{wanted}X"):
            return float(value)
    raise ValueError(f"unknown {what} {key!r}; known: {', '.join(str(k) for k in table)}")


def scale_from_preset(magnification: str, camera: str | None = None, optics: str | Path | None = None) -> float:
    """Micrometres per pixel for an objective ``magnification`` (e.g. ``"100X"``) and an
    optional ``camera`` factor, from configs/optics.yaml or the YAML file ``optics``."""
    presets = _optics(optics)
    um_per_px = _lookup(presets["magnifications"], magnification, "magnification")
    if camera is not None:
        um_per_px *= _lookup(presets.get("cameras") or {}, camera, "camera")
    return um_per_px


def rbc_diameter_um(optics: str | Path | None = None) -> float:
    """The typical RBC diameter in micrometres from the optics presets (7.5 if not given)."""
    return float((_optics(optics).get("sizes_um") or {}).get("rbc_diameter", 7.5))


def resample_factor(um_per_px: float, target_um_per_px: float) -> float:
    """How much to resize a capture so its pixels measure ``target_um_per_px``
    (< 1 shrinks: a 0.125 um/px capture for a 0.25 um/px detector gives 0.5)."""
    for name, value in (("um_per_px", um_per_px), ("target_um_per_px", target_um_per_px)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(um_per_px) / float(target_um_per_px)


def background(image: np.ndarray) -> np.ndarray:
    """Per-pixel background colour (float32, H x W x 3): the median of the brightest 10 %
    of pixels in each block of a coarse grid (blocks of at least ``BACKGROUND_BLOCK_PX``),
    interpolated between block centres, so uneven illumination (vignetting) cancels."""
    import cv2

    pixels = image.astype(np.float32) + 1.0
    height, width = pixels.shape[:2]
    rows = max(1, min(MAX_BACKGROUND_GRID, height // BACKGROUND_BLOCK_PX))
    cols = max(1, min(MAX_BACKGROUND_GRID, width // BACKGROUND_BLOCK_PX))
    grid = np.zeros((rows, cols, 3), dtype=np.float32)
    for j in range(rows):
        for i in range(cols):
            block = pixels[j * height // rows:(j + 1) * height // rows, i * width // cols:(i + 1) * width // cols]
            gray = block.sum(axis=2)
            grid[j, i] = np.median(block[gray >= np.percentile(gray, 90)], axis=0)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)


def optical_density(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed per-channel absorbance relative to the background (float32, >= 0), and the
    red channel's share of it (hue: low for red cells, higher for purple nuclei)."""
    pixels = image.astype(np.float32) + 1.0
    channels = np.clip(np.log(background(image) / pixels), 0, None)
    total = channels.sum(axis=2)
    red_share = np.divide(channels[:, :, 0], total, out=np.zeros_like(total), where=total > 1e-3)
    return total, red_share


def otsu_threshold(od: np.ndarray) -> float | None:
    """Otsu's OD threshold between background and cells; None if nothing stands out."""
    import cv2

    top = float(np.percentile(od, 99))
    if top < MIN_OD_CONTRAST:
        return None
    scaled = np.clip(od / top * 255.0, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(scaled, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return max(float(otsu) / 255.0 * top, MIN_OD_CONTRAST)


@dataclass(frozen=True)
class SingleCells:
    """Well-formed single red cells at one threshold: a label image (0 = none) and, for
    each kept cell, its label and pixel area."""

    labels: np.ndarray
    ids: np.ndarray
    areas: np.ndarray

    @property
    def diameters(self) -> np.ndarray:
        """Equivalent-circle diameters in pixels."""
        return 2.0 * np.sqrt(self.areas / math.pi)

    def peak_od(self, od: np.ndarray) -> np.ndarray:
        """Each cell's peak OD: the 90th percentile of its pixels."""
        count = int(self.labels.max()) if self.labels.size else 0
        return _label_quantile(self.labels.ravel(), od.ravel(), count, 0.9)[self.ids - 1]


def single_cells(od: np.ndarray, red_share: np.ndarray, threshold: float) -> SingleCells:
    """Components of ``od > threshold`` (holes filled) that are single red cells: not
    touching the border, not too small, convex and round, and of the hue of most of the
    stained area (red cells cover most of it; purple nuclei and platelets differ)."""
    import cv2

    mask = np.where(od > threshold, 255, 0).astype(np.uint8)
    height, width = mask.shape
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    labels = np.zeros(mask.shape, dtype=np.int32)
    kept = 0
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        if x == 0 or y == 0 or x + w == width or y + h == height:
            continue
        if _solidity(contour) < MIN_SOLIDITY or _axis_ratio(contour) < MIN_AXIS_RATIO:
            continue
        kept += 1
        cv2.drawContours(labels, [contour], 0, kept, thickness=-1)
    flat = labels.ravel()
    areas = np.bincount(flat, minlength=kept + 1)[1:].astype(np.float64)
    hues = np.bincount(flat, weights=red_share.ravel(), minlength=kept + 1)[1:]
    sized = areas >= MIN_CELL_AREA_PX
    hue = np.divide(hues, areas, out=np.zeros_like(hues), where=sized)
    typical_hue = float(np.median(red_share[mask > 0])) if kept else 0.0
    keep = sized & (np.abs(hue - typical_hue) <= HUE_TOLERANCE)
    return SingleCells(labels, np.flatnonzero(keep) + 1, areas[keep])


def _label_quantile(labels: np.ndarray, values: np.ndarray, count: int, q: float) -> np.ndarray:
    """The ``q`` quantile of ``values`` within each label 1..count (0 for empty labels)."""
    inside = labels > 0
    order = np.lexsort((values[inside], labels[inside]))
    grouped, sorted_values = labels[inside][order], values[inside][order]
    starts = np.searchsorted(grouped, np.arange(1, count + 1), side="left")
    ends = np.searchsorted(grouped, np.arange(1, count + 1), side="right")
    picks = np.minimum(starts + ((ends - starts - 1) * q).astype(int), np.maximum(ends - 1, 0))
    result = np.zeros(count)
    filled = ends > starts
    result[filled] = sorted_values[picks[filled]]
    return result


def measuring_threshold(od: np.ndarray, red_share: np.ndarray) -> float | None:
    """The half-maximum OD threshold of single red cells (None when none stand out).

    Among fractions of Otsu's threshold, the one whose single red cells cover the most
    pixels finds them (Otsu alone can fall between one and two layers of cells, or
    between cells and nuclei); then the threshold is set to half the median of their peak
    OD, twice, to converge."""
    otsu = otsu_threshold(od)
    if otsu is None:
        return None
    candidates = [t for t in (otsu * f for f in OTSU_FRACTIONS) if t >= MIN_OD_CONTRAST] or [otsu]
    covered = [single_cells(od, red_share, t).areas.sum() for t in candidates]
    threshold = candidates[int(np.argmax(covered))]
    for _ in range(2):
        cells = single_cells(od, red_share, threshold)
        if cells.areas.size == 0:
            return None
        threshold = max(0.5 * _weighted_median(cells.peak_od(od), cells.areas), MIN_OD_CONTRAST)
    return threshold


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def single_cell_diameters(image: np.ndarray) -> np.ndarray:
    """Equivalent diameters (px) of the single red cells of ``image``, measured at their
    half-maximum OD threshold; specks under half the area-weighted median are dropped."""
    return _single_cell_diameters(*optical_density(image))


def _single_cell_diameters(od: np.ndarray, red_share: np.ndarray) -> np.ndarray:
    threshold = measuring_threshold(od, red_share)
    if threshold is None:
        return np.zeros(0)
    cells = single_cells(od, red_share, threshold)
    if cells.areas.size == 0:
        return np.zeros(0)
    diameters = cells.diameters
    return diameters[diameters >= 0.5 * _weighted_median(diameters, cells.areas)]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` (bool) with every hole not connected to the image border filled."""
    import cv2

    padded = np.pad(mask, 1).astype(np.uint8)
    cv2.floodFill(padded, np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8), (0, 0), 2)
    return padded[1:-1, 1:-1] != 2


def opened_areas(mask: np.ndarray, radii: np.ndarray, stop_share: float = 0.0) -> np.ndarray:
    """Pixels of ``mask`` left by a morphological opening with a disc of each radius: the
    union of the discs of that radius that fit inside the mask, found with two Euclidean
    distance transforms per radius. Radii after the area falls under ``stop_share`` of the
    first are not computed (left 0)."""
    import cv2

    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    areas = np.zeros(len(radii))
    for i, radius in enumerate(radii):
        centres = inside > radius  # discs of this radius around them stay inside the mask
        if not centres.any():
            break
        reach = cv2.distanceTransform((~centres).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        areas[i] = np.count_nonzero(reach <= radius)
        if areas[i] < stop_share * areas[0]:
            break
    return areas


def _radius_at(radii: np.ndarray, areas: np.ndarray, share: float) -> float | None:
    """The radius where the area left first falls to ``share`` of the first (interpolated)."""
    level = share * areas[0]
    below = np.flatnonzero(areas <= level)
    if below.size == 0 or below[0] == 0:
        return None
    i = int(below[0])
    span = areas[i - 1] - areas[i]
    return float(radii[i - 1] + (radii[i] - radii[i - 1]) * (areas[i - 1] - level) / span) if span > 0 else float(radii[i])


def plausible_rbc_diameters_px(optics: str | Path | None = None) -> tuple[float, float]:
    """Red-cell diameters (px) a capture can show: from 1.5x coarser than the coarsest optics
    preset to 2x finer than the finest (scanners and cropped camera frames go finer)."""
    presets = _optics(optics)
    scales = [m * c for m in presets["magnifications"].values() for c in presets["cameras"].values()]
    size_um = rbc_diameter_um(optics)
    return size_um / (1.5 * max(scales)), size_um / (min(scales) / 2)


def granulometric_diameter(image: np.ndarray) -> float | None:
    """The red-cell diameter (px) of a crowded field by granulometry of its stained area, or
    None when the area left does not fall steeply at one radius, when the stained area holds
    fewer than ``MIN_CELLS`` discs of that size (one object, not a population of cells), or
    when the size is not one a red cell can have (``plausible_rbc_diameters_px``)."""
    return _granulometric_diameter(optical_density(image)[0])


def _granulometric_diameter(od: np.ndarray) -> float | None:
    otsu = otsu_threshold(od)
    if otsu is None:
        return None
    mask = fill_holes(od > otsu)
    if not mask.any():
        return None
    radii = np.unique(np.round(np.geomspace(1, max(2, min(mask.shape) / 5), GRANULOMETRY_STEPS)))
    areas = opened_areas(mask, radii, stop_share=0.2)
    r50, r20 = _radius_at(radii, areas, 0.5), _radius_at(radii, areas, 0.2)
    if r50 is None or r20 is None or r20 > GRANULOMETRY_MAX_FALL * r50:
        return None
    if np.count_nonzero(mask) < MIN_CELLS * math.pi * r50 * r50:
        return None
    diameter = 2.0 * r50 * GRANULOMETRY_CALIBRATION
    smallest, largest = plausible_rbc_diameters_px()
    return diameter if smallest <= diameter <= largest else None


def _solidity(contour: np.ndarray) -> float:
    import cv2

    hull = cv2.contourArea(cv2.convexHull(contour))
    return cv2.contourArea(contour) / hull if hull > 0 else 0.0


def _axis_ratio(contour: np.ndarray) -> float:
    """Minor over major axis of the contour's second moments (1 for a disc)."""
    import cv2

    m = cv2.moments(contour)
    a, b, c = m["mu20"], m["mu02"], m["mu11"]
    spread = math.sqrt(max((a - b) ** 2 + 4 * c * c, 0.0))
    major, minor = a + b + spread, a + b - spread
    return math.sqrt(max(minor, 0.0) / major) if major > 0 else 0.0


def _regions(width: int, height: int, size: int, count: int) -> list[tuple[int, int, int, int]]:
    """A fixed grid of up to ``count`` regions of ``size`` px spread over the capture."""
    if width * height <= 4 * size * size:
        return [(0, 0, width, height)]
    per_axis = max(1, math.isqrt(count))
    boxes = []
    for j in range(per_axis):
        for i in range(per_axis):
            x0 = int(round((width - min(size, width)) * (i + 0.5) / per_axis))
            y0 = int(round((height - min(size, height)) * (j + 0.5) / per_axis))
            boxes.append((x0, y0, min(x0 + size, width), min(y0 + size, height)))
    return sorted(set(boxes), key=lambda b: (b[1], b[0]))


def _size_agreement(sizes: np.ndarray) -> tuple[float, float]:
    """The median of ``sizes`` and how well they agree: 1 for a robust relative spread of 0.1
    or less, 0 for 0.3 or more."""
    median = float(np.median(sizes))
    spread = 1.4826 * float(np.median(np.abs(sizes - median))) / median
    return median, min(1.0, max(0.0, (0.3 - spread) / 0.2))


def estimate_um_per_px(
    source: np.ndarray | CaptureReader,
    rbc_diameter: float | None = None,
    region_size: int = REGION_SIZE_PX,
    max_regions: int = MAX_REGIONS,
) -> ScaleEstimate:
    """Measure a capture's scale from its red cells (``rbc_diameter`` um across, default
    from configs/optics.yaml). ``source`` is an RGB image or a ``CaptureReader``; large
    captures are measured on up to ``max_regions`` regions of ``region_size`` px.
    When single red cells give a confidence under ``GRANULOMETRY_CONFIDENCE`` (crowded
    fields), granulometry of the same regions is used if it succeeds. ``ValueError`` when
    neither measures: fewer than ``MIN_CELLS`` single red cells and no granulometry."""
    reader = source if isinstance(source, CaptureReader) else ArrayCapture(source)
    boxes = _regions(reader.width, reader.height, region_size, max_regions)
    densities = [optical_density(reader.read_region(*box)) for box in boxes]
    diameters = np.concatenate([_single_cell_diameters(od, red_share) for od, red_share in densities])
    size_um = rbc_diameter if rbc_diameter is not None else rbc_diameter_um()
    confidence = 0.0
    if diameters.size >= MIN_CELLS:
        median, agreement = _size_agreement(diameters)
        confidence = min(1.0, diameters.size / 50) * agreement
    if confidence < GRANULOMETRY_CONFIDENCE:
        measured = np.array([d for d in (_granulometric_diameter(od) for od, _ in densities) if d is not None])
        if measured.size:
            diameter, agreement = _size_agreement(measured)
            # Less trust when few regions measure or when they disagree.
            trust = measured.size / len(boxes) * (agreement if measured.size >= 3 else 1.0)
            return ScaleEstimate(size_um / diameter, diameter, int(diameters.size),
                                 round(GRANULOMETRY_CONFIDENCE * trust, 3), "granulometry")
    if diameters.size < MIN_CELLS:
        raise ValueError(f"{reader.path}: {diameters.size} single red cells found, too few to measure the scale "
                         f"(need {MIN_CELLS}), and granulometry found no red-cell size")
    return ScaleEstimate(size_um / median, median, int(diameters.size), round(confidence, 3))
