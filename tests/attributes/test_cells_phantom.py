"""Synthetic training cells: the classes drawn, and a clear error for ones the phantom lacks."""

from __future__ import annotations

import pytest

from smearscope.attributes.cellset import CropSpec
from smearscope.attributes.schema import default_heads
from smearscope.attributes.training_data import phantom_cell_set


def test_phantom_cells_take_the_types_asked_for_in_turn():
    cells, issues = phantom_cell_set(4, 0, ["H_100X_C1"], default_heads(), CropSpec(32, 22.0, 1.8),
                                     types=["basophil", "lymphoblast"])
    assert issues == [] and len(cells) == 4
    assert cells.labels == ["basophil", "lymphoblast", "basophil", "lymphoblast"]


def test_phantom_cells_of_every_class_by_default():
    cells, _ = phantom_cell_set(14, 0, ["H_40X_C1"], default_heads(), CropSpec(32, 22.0, 1.8))
    assert "artifact" in cells.labels and len(set(cells.labels)) == 14


def test_a_type_the_phantom_does_not_draw_is_a_clear_error():
    with pytest.raises(ValueError, match="phantom_types: hairy_cell not drawn by the phantom; known: "):
        phantom_cell_set(2, 0, ["H_100X_C1"], default_heads(), CropSpec(32, 22.0, 1.8), types=["hairy_cell", "basophil"])
