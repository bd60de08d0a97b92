"""Cell results, their JSON form, and the report's bounded gallery."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from smearscope.attributes.explain import CellExplanation
from smearscope.tools.report_html import (
    THUMBNAIL_SIDE, GalleryThumbnails, gallery_cells, render_report, thumbnail_jpeg,
)
from smearscope.tools.results import CaptureResult, CellResult

RESULT_JSON_CELL_KEYS = [
    "box_xyxy", "detection_score", "cell_type", "group", "type_probability", "top_types", "attributes",
    "attribute_probabilities", "rationale", "consistency", "review", "review_reasons",
]


def make_cell(index: int, cell_type: str, review: bool) -> CellResult:
    """A cell with a real explanation of the given type and review flag."""
    explanation = CellExplanation(
        cell_type=cell_type,
        group=cell_type,
        type_probability=0.5 + index % 5 / 10,
        top_types={cell_type: 0.9},
        attributes={"wbcatt_nucleus_shape": "round"},
        attribute_probabilities={"wbcatt_nucleus_shape": 0.8},
        rationale=f"{cell_type}: round nucleus (0.80)",
        consistency=0.9,
        review=review,
        review_reasons=["uncertain type: lymphocyte 0.50 vs monocyte 0.40"] if review else [],
        best_supported_type=cell_type,
    )
    return CellResult((10.0 * index, 5.0, 10.0 * index + 8.0, 13.0), 0.75, explanation)


def make_capture(cells: list[CellResult]) -> CaptureResult:
    return CaptureResult(capture="/data/smear.png", width=800, height=600, um_per_px=0.3, scale_source="given",
                         scale_confidence=1.0, focus=20.0, out_of_focus=False, cells=cells)


def crop(index: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (128, 128, 3), dtype=np.uint8)


@pytest.fixture
def crowded() -> list[CellResult]:
    """Ten lymphocytes (three flagged, late in the list) and two neutrophils."""
    kinds = [("lymphocyte", False)] * 6 + [("lymphocyte", True)] * 3 + [("neutrophil", False)] * 2 + [("lymphocyte", False)]
    return [make_cell(i, t, r) for i, (t, r) in enumerate(kinds)]


def test_result_json_keeps_each_cells_keys_and_drops_nothing_else():
    cell = make_cell(3, "monocyte", True)
    data = json.loads(json.dumps(make_capture([cell]).as_dict()))
    assert list(data["cells"][0]) == RESULT_JSON_CELL_KEYS
    assert data["cells"][0]["box_xyxy"] == [30.0, 5.0, 38.0, 13.0]
    assert data["cells"][0]["review_reasons"] == cell.explanation.review_reasons
    assert list(data)[:10] == ["capture", "width", "height", "um_per_px", "scale_source", "scale_confidence",
                               "focus", "out_of_focus", "cells", "seconds"]
    assert data["differential"]["review_count"] == 1


def test_gallery_takes_flagged_cells_first_then_cell_order(crowded):
    assert gallery_cells(crowded, per_type=4) == [0, 6, 7, 8, 9, 10]
    assert gallery_cells(crowded, per_type=2) == [6, 7, 9, 10]
    assert gallery_cells(crowded, per_type=100) == list(range(len(crowded)))


def test_streamed_thumbnails_are_those_the_gallery_shows_and_stay_few():
    rng = np.random.default_rng(0)
    types = ["lymphocyte", "neutrophil", "blast"]
    cells = [make_cell(i, types[rng.integers(3)], bool(rng.random() < 0.2)) for i in range(300)]
    gallery = GalleryThumbnails(per_type=5)
    for i, cell in enumerate(cells):
        gallery.offer(i, cell, crop(i))
        assert len(gallery) <= 2 * 5 * len(types)
    chosen = gallery.chosen(cells)
    assert sorted(chosen) == gallery_cells(cells, per_type=5)
    assert chosen[sorted(chosen)[0]] == thumbnail_jpeg(crop(sorted(chosen)[0]))
    with pytest.raises(ValueError, match="expected cell 300, got 302"):
        gallery.offer(302, cells[0], crop(0))


def test_thumbnail_is_a_small_jpeg_of_the_crop():
    image = np.zeros((128, 128, 3), np.uint8)
    image[:, 64:] = (200, 40, 40)
    data = thumbnail_jpeg(image)
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert data[:2] == b"\xff\xd8"
    assert decoded.shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3)
    assert np.abs(decoded[:, -10:].astype(int) - (200, 40, 40)).max() < 12
    assert decoded[:, :10].max() < 12


def test_report_shows_the_chosen_cells_and_says_how_many_are_left_out(crowded):
    result = make_capture(crowded)
    gallery = GalleryThumbnails(per_type=4)
    for i, cell in enumerate(crowded):
        gallery.offer(i, cell, crop(i))
    page = render_report(result, gallery.chosen(crowded), "overlay.png")
    assert page.count('class="cell') == 6
    assert [f'id="cell-{i}"' in page for i in range(len(crowded))] == [i in (0, 6, 7, 8, 9, 10) for i in range(12)]
    assert "<h3>flagged for review (3)</h3>" in page
    assert "<h3>lymphocyte (1 shown of 7)</h3>" in page
    assert "<h3>neutrophil (2)</h3>" in page
    assert "Not shown: lymphocyte 6." in page
    assert page.count("data:image/jpeg;base64,") == 6


def test_report_without_left_out_cells_has_no_note(crowded):
    thumbnails = {i: thumbnail_jpeg(crop(i)) for i in range(len(crowded))}
    page = render_report(make_capture(crowded), thumbnails, "overlay.png")
    assert page.count('class="cell') == len(crowded)
    assert "Not shown" not in page and "shown of" not in page
    with pytest.raises(ValueError, match=r"thumbnails given for cells \[12\] of a capture with 12 cells"):
        render_report(make_capture(crowded), {12: thumbnails[0]}, "overlay.png")


def test_report_counts_nucleated_red_cells_per_100_wbcs_outside_the_wbc_total():
    cells = [make_cell(i, "lymphocyte", False) for i in range(4)] + [make_cell(4, "erythroblast", False)]
    thumbnails = {i: thumbnail_jpeg(crop(i)) for i in range(len(cells))}
    page = render_report(make_capture(cells), thumbnails, "overlay.png")
    assert "<tr><th>total WBCs</th><th>4</th>" in page
    assert "nucleated red cells (not in the WBC total)</td><td>1</td><td>25.0 per 100 WBCs" in page
    without = render_report(make_capture(cells[:4]), {i: thumbnails[i] for i in range(4)}, "overlay.png")
    assert "nucleated red cells" not in without
    only_nrbc = render_report(make_capture(cells[4:]), {0: thumbnails[4]}, "overlay.png")
    assert "nucleated red cells (not in the WBC total)</td><td>1</td><td>n/a (no WBCs)" in only_nrbc
