"""The twelve domains change the pictures measurably, the physical scene stays the same."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from smearscope.datasets.phantom import (
    DOMAIN_NAMES, centred_view, domain_spec, make_slide, parse_domains, render_field, render_view, single_cell_slide,
)

DOMAINS_256 = [f"{m}_{x}_C1" for m in "HL" for x in ("100X", "40X", "10X")]


@pytest.fixture(scope="module")
def slide():
    return make_slide(4, domains=DOMAINS_256, field_px=256)


def sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64), cv2.CV_64F).var())


def contrast(image: np.ndarray) -> float:
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(np.percentile(g, 99) - np.percentile(g, 1))


@pytest.mark.parametrize("magnification", ["100X", "40X", "10X"])
@pytest.mark.parametrize("camera", ["C1", "C2"])
def test_high_cost_microscope_is_sharper_and_more_contrasted(slide, magnification, camera):
    high, _ = render_field(slide, f"H_{magnification}_{camera}", 256)
    low, _ = render_field(slide, f"L_{magnification}_{camera}", 256)
    assert sharpness(high) > 3 * sharpness(low)
    assert contrast(high) > 1.2 * contrast(low)


def test_low_cost_microscope_casts_colour_and_darkens_corners(slide):
    high, _ = render_field(slide, "H_100X_C1", 256)
    low, _ = render_field(slide, "L_100X_C1", 256)
    # Background (brightest pixels): white under H, yellowish under L.
    for image, yellow in ((high, False), (low, True)):
        bright = image.reshape(-1, 3)[cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).reshape(-1) > np.percentile(image.mean(2), 90)]
        red_minus_blue = float(bright[:, 0].mean()) - float(bright[:, 2].mean())
        assert (red_minus_blue > 20) is yellow
    corners = np.concatenate([low[:16, :16], low[:16, -16:], low[-16:, :16], low[-16:, -16:]]).reshape(-1, 3)
    centre_bright = np.percentile(low[96:160, 96:160].reshape(-1, 3).mean(1), 95)
    assert np.percentile(corners.mean(1), 95) < centre_bright - 5


def test_cameras_differ_in_colour_and_compression(slide):
    one, _ = render_field(slide, "H_100X_C1", 256)
    two, _ = render_field(slide, "H_100X_C2", 256)
    assert np.abs(one.astype(float).mean((0, 1)) - two.astype(float).mean((0, 1))).max() > 3


def test_cell_size_in_pixels_follows_the_magnification():
    slide = single_cell_slide(2, "lymphocyte", {"cell_size": "large"}, background=False, extent_um=60.0)
    diameters = {}
    for magnification, size in (("100X", 256), ("40X", 128), ("10X", 64)):
        image = render_view(slide, centred_view(slide, f"H_{magnification}_C1", size))
        g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)
        diameters[magnification] = 2 * np.sqrt((g < np.median(g) - 10).sum() / np.pi)
    assert diameters["100X"] / diameters["40X"] == pytest.approx(2.5, rel=0.1)
    assert diameters["100X"] / diameters["10X"] == pytest.approx(10.0, rel=0.15)


def test_same_cells_in_every_domain_with_boxes_scaled_by_pixel_size(slide):
    reference_image, reference = render_field(slide, "H_100X_C1", 256)
    assert len(reference) >= 1
    for name in DOMAINS_256[1:]:
        _, record = render_field(slide, name, 256)
        ratio = domain_spec("H_100X_C1").um_per_px / domain_spec(name).um_per_px
        # A box in the reference maps to this domain by scaling around the common field centre.
        expected = (reference.boxes_xyxy - 128.0) * ratio + 128.0
        for i, box in enumerate(expected):
            match = np.flatnonzero(np.abs(record.boxes_xyxy - box).max(axis=1) < 1e-6)
            assert match.size == 1, f"{name}: cell {i} of H_100X_C1 not found"
            j = match[0]
            assert record.source_labels[j] == reference.source_labels[i]
            assert all(record.attributes[k][j] == reference.attributes[k][i] for k in reference.attributes)
        assert record.domain.um_per_px == pytest.approx(domain_spec(name).um_per_px)
        assert len(record) >= len(reference)  # wider fields hold at least the same cells


def test_domain_names():
    assert len(DOMAIN_NAMES) == 12 and len(set(DOMAIN_NAMES)) == 12
    assert domain_spec("L_10X_C2").um_per_px == pytest.approx(1.25 * 1.15)
    assert [d.name for d in parse_domains("H_100X_C1, L_40X_C2")] == ["H_100X_C1", "L_40X_C2"]
    assert len(parse_domains(None)) == 12


@pytest.mark.parametrize("name, message", [
    ("H_100X", "is not of the form"),
    ("X_100X_C1", "unknown microscope"),
    ("H_55X_C1", "unknown magnification"),
    ("H_100X_C9", "unknown camera"),
    ("H_100X_C1,H_100X_C1", "names a domain twice"),
])
def test_bad_domain_names_are_rejected(name, message):
    with pytest.raises(ValueError, match=message):
        parse_domains(name)
