"""Phantom slides and fields: ground truth, determinism, border rule, the slide's contents."""

from __future__ import annotations

import numpy as np
import pytest

from smearscope.datasets.phantom import (
    View, centred_view, domain_spec, make_slide, render_field, render_view, single_cell_slide, view_truth,
)
from smearscope.datasets.phantom.params import parse_phantom_config, phantom_config
from smearscope.datasets.phantom.cellspec import leukemiaattri_types
from smearscope.datasets.schema import load_config_yaml, schema_attributes, taxonomy


def test_field_ground_truth_is_complete_and_valid():
    slide = make_slide(7, diagnosis="AML", domains=["H_100X_C1", "H_40X_C1"], field_px=256)
    image, record = render_field(slide, "H_40X_C1", 256)
    assert image.shape == (256, 256, 3) and image.dtype == np.uint8
    assert record.width == record.height == 256 and len(record) >= 1
    assert record.domain.source == "phantom" and record.domain.diagnosis == "AML"
    assert set(record.attributes) == {s.qualified for s in schema_attributes("leukemiaattri")}
    table = taxonomy().sources["leukemiaattri"]
    for label, cell_type in zip(record.source_labels, record.cell_types):
        assert table[label] == cell_type
        assert cell_type in phantom_config().diagnoses["AML"]
    for i, cell_type in enumerate(record.cell_types):
        values = {v[i] for v in record.attributes.values()}
        assert (values == {"unknown"}) == (cell_type == "artifact")
    boxes = record.boxes_xyxy
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 256).all() and (boxes[:, 3] <= 256).all()


def test_boxes_sit_on_the_drawn_cells():
    slide = single_cell_slide(1, "monocyte", background=False, extent_um=40.0)
    image, record = render_field(slide, "H_100X_C1", 256)
    x0, y0, x1, y1 = record.boxes_xyxy[0]
    dark = image.mean(axis=2) < np.median(image.mean(axis=2)) - 8
    ys, xs = np.nonzero(dark)
    assert abs(xs.min() - x0) <= 2 and abs(xs.max() + 1 - x1) <= 2
    assert abs(ys.min() - y0) <= 2 and abs(ys.max() + 1 - y1) <= 2


def test_same_seed_same_bytes_other_seed_other_picture():
    a = render_field(make_slide(3, domains=["L_40X_C2"], field_px=128), "L_40X_C2", 128)
    b = render_field(make_slide(3, domains=["L_40X_C2"], field_px=128), "L_40X_C2", 128)
    c = render_field(make_slide(4, domains=["L_40X_C2"], field_px=128), "L_40X_C2", 128)
    assert a[0].tobytes() == b[0].tobytes()
    assert np.array_equal(a[1].boxes_xyxy, b[1].boxes_xyxy) and a[1].source_labels == b[1].source_labels
    assert a[0].tobytes() != c[0].tobytes()


def test_cells_cut_by_the_border_are_kept_only_when_half_visible():
    slide = single_cell_slide(2, "lymphocyte", background=False, extent_um=60.0)
    cell = slide.cells[0]
    spec = domain_spec("H_100X_C1")
    radius_px = cell.diameter_um / 2 / spec.um_per_px
    for shown, kept in ((0.8, True), (0.2, False)):
        # Put the cell's centre left of the image edge so that about ``shown`` of its width is inside.
        left = cell.x_um + radius_px * (1 - 2 * shown) * spec.um_per_px
        view = View(spec, (left, cell.y_um - 64 * spec.um_per_px), 128, 128)
        record = view_truth(slide, view, "cut.png")
        assert (len(record) == 1) is kept
        if kept:
            assert record.boxes_xyxy[0, 0] == 0.0


def test_slides_keep_cells_off_field_borders_and_one_in_the_smallest_field():
    domains = ["H_100X_C1", "H_40X_C1", "H_10X_C2"]
    for seed in range(4):
        slide = make_slide(seed, domains=domains, field_px=128)
        assert slide.width_um == pytest.approx(128 * domain_spec("H_10X_C2").um_per_px)
        for name in domains:
            view = centred_view(slide, name, 128)
            everything = view_truth(slide, view, "f.png", min_visible=1e-6)
            whole = view_truth(slide, view, "f.png", min_visible=0.999)
            assert len(everything) == len(whole)  # nobody straddles a field border
        assert len(view_truth(slide, centred_view(slide, "H_100X_C1", 128), "f.png")) >= 1


def test_slide_has_red_cells_platelets_and_debris_but_none_under_white_cells():
    slide = make_slide(5, domains=["H_10X_C1"], field_px=128)
    rbc = slide.red_cells
    assert len(rbc) > 250 and len(slide.platelets) > 5 and len(slide.debris) > 0
    assert 7.0 < rbc.diameter.mean() < 8.0 and 0.2 < rbc.diameter.std() < 0.8
    for cell in slide.cells:
        distance = np.hypot(rbc.x - cell.x_um, rbc.y - cell.y_um)
        assert (distance > cell.diameter_um / 2).all()


def test_single_cell_slides_share_the_cell_when_one_attribute_changes():
    a = single_cell_slide(9, "myeloblast", {"cytoplasmic_basophilia": "slight"}).cells[0]
    b = single_cell_slide(9, "myeloblast", {"cytoplasmic_basophilia": "moderate"}).cells[0]
    assert (a.seed, a.diameter_um) == (b.seed, b.diameter_um)
    assert a.value("cytoplasmic_basophilia") == "slight" and b.value("cytoplasmic_basophilia") == "moderate"


def test_every_leukemiaattri_class_can_be_drawn():
    assert len(leukemiaattri_types()) == 14
    for cell_type in leukemiaattri_types():
        slide = single_cell_slide(0, cell_type, typical=True, extent_um=24.0)
        image = render_view(slide, centred_view(slide, "H_40X_C1", 64))
        assert image.std() > 5


@pytest.mark.parametrize("call, message", [
    (lambda: single_cell_slide(0, "platelet"), "not a LeukemiaAttri class"),
    (lambda: single_cell_slide(0, "myeloblast", {"colour": "blue"}), "unknown LeukemiaAttri attribute"),
    (lambda: single_cell_slide(0, "myeloblast", {"nucleolus": "huge"}), "is not one of"),
    (lambda: make_slide(0, diagnosis="MDS"), "unknown diagnosis"),
    (lambda: make_slide(0, width_um=100.0), "give both"),
    (lambda: render_field(make_slide(0, domains=["H_100X_C1"], field_px=64), "H_100X_C1", 0), "not positive"),
])
def test_bad_arguments_raise_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_phantom_config_is_checked():
    raw = load_config_yaml("phantom.yaml")
    broken = {**raw, "classes": {**raw["classes"], "neutrophil": {"granules": [{"kind": "glitter", "per_um2": 1}]}}}
    with pytest.raises(ValueError, match="unknown granule kind 'glitter'"):
        parse_phantom_config(broken)
    broken = {**raw, "diagnoses": {"AML": {"myeloblast": 1.0, "plasma_cell": 0.1}}}
    with pytest.raises(ValueError, match="types without a look: plasma_cell"):
        parse_phantom_config(broken)
    broken = {**raw, "slide": {**raw["slide"], "sparkle": 1}}
    with pytest.raises(ValueError, match="unknown key"):
        parse_phantom_config(broken)
