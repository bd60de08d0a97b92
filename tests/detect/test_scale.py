"""Physical scale: optics presets and measurement from red cells of known size."""

from __future__ import annotations

import numpy as np
import pytest

from smearscope.detect.capture import ArrayCapture
from smearscope.detect.scale import (
    ScaleEstimate,
    estimate_um_per_px,
    granulometric_diameter,
    resample_factor,
    scale_from_preset,
)


def test_presets_from_configs():
    assert scale_from_preset("100X") == pytest.approx(0.125)
    assert scale_from_preset("40x") == pytest.approx(0.3125)
    assert scale_from_preset("10", camera="C2") == pytest.approx(1.25 * 1.15)


def test_user_presets_file(tmp_path):
    path = tmp_path / "optics.yaml"
    path.write_text("magnifications: {63X: 0.1}\ncameras: {mine: 2.0}\n", encoding="utf-8")
    assert scale_from_preset("63X", "mine", optics=path) == pytest.approx(0.2)
    (tmp_path / "bad.yaml").write_text("cameras: {}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.yaml"):
        scale_from_preset("63X", optics=tmp_path / "bad.yaml")


@pytest.mark.parametrize("magnification,camera,message", [("63X", None, "magnification '63X'; known: 100X"), ("100X", "C9", "camera 'C9'; known: C1, C2")])
def test_unknown_presets_list_the_known_ones(magnification, camera, message):
    with pytest.raises(ValueError, match=message):
        scale_from_preset(magnification, camera)


def test_resample_factor():
    assert resample_factor(0.125, 0.25) == pytest.approx(0.5)
    assert resample_factor(1.25, 0.3125) == pytest.approx(4.0)
    for bad in [(0, 0.25), (0.1, -1), (float("nan"), 0.2), ("0.1", 0.2)]:
        with pytest.raises(ValueError, match="um_per_px"):
            resample_factor(*bad)


PINK = (208.0, 122.0, 138.0)
PURPLE = (185.0, 130.0, 175.0)
FAINT = (226.0, 186.0, 195.0)

CASES = [
    # um/px (objective), field size px, colour cast, brightness, RBC colour
    (0.125, 1024, (1.0, 1.0, 1.0), 1.0, PINK),      # 100X: RBCs about 60 px
    (0.125, 1024, (0.88, 0.97, 1.12), 0.8, PURPLE),
    (0.3125, 512, (1.0, 1.0, 1.0), 1.0, PINK),      # 40X: about 24 px
    (0.3125, 512, (1.06, 0.93, 0.85), 1.08, FAINT),
    (0.3125, 512, (1.0, 1.0, 1.0), 0.55, PINK),
    (1.25, 256, (1.0, 1.0, 1.0), 1.0, PINK),        # 10X: about 6 px
    (1.25, 256, (0.9, 1.0, 1.1), 0.75, PURPLE),
    (1.25 * 1.15, 256, (1.05, 0.95, 0.9), 1.0, FAINT),
]


@pytest.mark.parametrize("um_per_px,size,cast,brightness,rbc", CASES)
def test_estimate_within_ten_percent_across_magnifications_and_stains(smear, um_per_px, size, cast, brightness, rbc):
    image, diameters = smear(size, size, um_per_px, seed=int(size + 100 * um_per_px), cast=cast, brightness=brightness, rbc_rgb=np.array(rbc))
    estimate = estimate_um_per_px(image)
    assert isinstance(estimate, ScaleEstimate)
    assert abs(estimate.um_per_px / um_per_px - 1) < 0.10, estimate
    assert estimate.rbc_diameter_px == pytest.approx(7.5 / estimate.um_per_px)
    assert 5 <= estimate.n_cells <= len(diameters)
    assert 0.0 < estimate.confidence <= 1.0


def test_crowded_field_with_overlaps_and_white_cells(smear):
    image, _ = smear(512, 512, 0.3125, seed=4, coverage=0.6, overlapping=0.4, wbcs=3)
    estimate = estimate_um_per_px(image)
    assert abs(estimate.um_per_px / 0.3125 - 1) < 0.10, estimate


def test_more_cells_and_tighter_sizes_give_more_confidence(smear):
    few, _ = smear(300, 300, 0.3125, seed=1, coverage=0.05)
    many, _ = smear(700, 700, 0.3125, seed=1, coverage=0.3)
    assert estimate_um_per_px(few).confidence < estimate_um_per_px(many).confidence


class RecordingReader(ArrayCapture):
    """An in-memory capture that records every region read from it."""

    def __init__(self, image: np.ndarray) -> None:
        super().__init__(image, "recorded")
        self.regions: list[tuple[int, int, int, int]] = []

    def _read(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        self.regions.append((x0, y0, x1, y1))
        return super()._read(x0, y0, x1, y1)


def test_large_capture_is_measured_on_sampled_regions(smear):
    field, _ = smear(700, 700, 0.3125, seed=9)
    reader = RecordingReader(np.tile(field, (4, 4, 1)))  # 2800 x 2800
    estimate = estimate_um_per_px(reader, region_size=512, max_regions=9)
    assert abs(estimate.um_per_px / 0.3125 - 1) < 0.10
    assert len(reader.regions) == 9
    read = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in reader.regions)
    assert read <= 9 * 512 * 512 < reader.width * reader.height / 3


@pytest.mark.parametrize("content", ["blank", "noise"])
def test_no_cells_is_a_clear_error(content):
    rng = np.random.default_rng(0)
    image = np.full((200, 200, 3), 235, np.uint8)
    if content == "noise":
        image = np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)
    with pytest.raises(ValueError, match="too few to measure the scale"):
        estimate_um_per_px(image)


@pytest.mark.parametrize("seed", [1, 4])
@pytest.mark.parametrize("domain", ["H_100X_C1", "L_100X_C2", "L_40X_C2"])
def test_phantom_fields_at_100x_and_40x(seed, domain):
    from smearscope.datasets.phantom import make_slide, render_field

    image, record = render_field(make_slide(seed), domain, size=640)
    estimate = estimate_um_per_px(image)
    assert abs(estimate.um_per_px / record.domain.um_per_px - 1) < 0.10, (domain, estimate)


@pytest.mark.parametrize("seed", [1, 4])
@pytest.mark.parametrize("domain", ["L_100X_C2", "H_40X_C1", "L_40X_C1", "L_40X_C2"])
def test_granulometry_measures_red_cells_of_phantom_fields(seed, domain):
    from smearscope.datasets.phantom import make_slide, render_field

    image, record = render_field(make_slide(seed), domain, size=640)
    diameter_um = granulometric_diameter(image) * record.domain.um_per_px
    assert diameter_um == pytest.approx(7.5, rel=0.05), domain


@pytest.mark.parametrize("scene", ["mass filling the field", "one large object", "camera noise"])
def test_no_granulometry_without_a_population_of_red_cells(scene):
    rng = np.random.default_rng(0)
    image = np.full((400, 400, 3), 235, np.uint8)
    if scene == "mass filling the field":  # a thick smear region
        image[40:360, 40:360] = (200, 120, 130)
    elif scene == "one large object":  # a stained blob, not red cells
        image[100:250, 100:250] = (200, 120, 130)
    else:
        image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    assert granulometric_diameter(image) is None
    if scene != "mass filling the field":
        with pytest.raises(ValueError, match="granulometry found no red-cell size"):
            estimate_um_per_px(image)


def test_granulometry_measures_closely_packed_discs_without_bias():
    """Discs 21 px across, 1 px apart on a grid: the opening keeps nothing outside them."""
    import cv2

    image = np.full((400, 400, 3), 235, np.uint8)
    for y in range(30, 380, 22):
        for x in range(30, 380, 22):
            cv2.circle(image, (x, y), 10, (200, 120, 130), -1)
    assert granulometric_diameter(image) / 1.02 == pytest.approx(21.0, rel=0.05)


def test_a_crowded_real_field_is_measured_not_assumed(shared_data):
    """BCCD fields are crowded: red cells touch and overlap, so few stand alone."""
    import cv2

    from smearscope.datasets.formats.voc import load_voc
    from smearscope.datasets.sources.bccd_types import estimate_um_per_px as scale_from_rbc_boxes

    root = shared_data / "bccd"
    image = cv2.cvtColor(cv2.imread(str(root / "JPEGImages" / "BloodImage_00000.jpg")), cv2.COLOR_BGR2RGB)
    estimate = estimate_um_per_px(image)
    records = load_voc(root / "Annotations", root / "JPEGImages", names=["BloodImage_00000"]).records
    annotated = scale_from_rbc_boxes(records)
    assert estimate.method == "granulometry" and estimate.n_cells < 10
    assert abs(np.log(estimate.um_per_px / annotated)) < 0.35, (estimate.um_per_px, annotated)
    assumed_100x = scale_from_preset("100X")
    assert abs(np.log(estimate.um_per_px / annotated)) < abs(np.log(assumed_100x / annotated)) / 2
