"""Cropped-cell sets: targets, the physical scale of the cache, and the on-disk cache."""

from __future__ import annotations

from pathlib import Path

import torch

from smearscope.attributes.cellset import CropSpec, build_cell_set, cached_cell_set, concat_cell_sets
from smearscope.attributes.schema import NO_ATTRIBUTE_LABEL, default_heads
from smearscope.datasets.records import Domain, ImageRecord
from smearscope.datasets.sources.wbcatt import load_wbcatt


def test_cell_set_targets_and_cache_reuse(wbcatt_folder, tmp_path):
    records = load_wbcatt(wbcatt_folder, "val", um_per_px=0.25).records[:6]
    heads = default_heads()
    spec = CropSpec(40, 27.5, 2.25)
    first, issues = cached_cell_set(records, heads, spec, tmp_path / "cache", "val")
    assert issues == [] and len(first) == 6 and first.images.shape == (6, 40, 40, 3)
    assert first.labels[:2] == ["eosinophil", "lymphocyte"] and first.sources == ["wbcatt"] * 6
    colour = list(heads).index("wbcatt_cytoplasm_colour") - 1
    assert first.attribute_targets[0, colour] == 0 and first.attribute_targets[1, colour] == 2
    assert torch.all(first.attribute_targets[:, :7] == NO_ATTRIBUTE_LABEL)  # no LeukemiaAttri labels here
    (cache,) = (tmp_path / "cache").glob("val-*.pt")
    again, _ = cached_cell_set(records, heads, spec, tmp_path / "cache", "val")
    assert torch.equal(again.images, first.images) and len(list((tmp_path / "cache").glob("*.pt"))) == 1

    # a changed input makes a new cache entry, and a missing image is reported, not fatal
    Path(records[0].path).unlink()
    changed, issues = cached_cell_set(records, heads, spec, tmp_path / "cache", "val")
    assert len(changed) == 5 and "image file not found" in issues[0].reason
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2
    assert len(concat_cell_sets([first, changed])) == 11


def test_records_use_optics_presets_and_skip_non_wbc_cells(tmp_path):
    import cv2
    import numpy as np

    image = np.full((200, 200, 3), 230, np.uint8)
    cv2.circle(image, (100, 100), 40, (120, 60, 150), -1)
    path = tmp_path / "field.png"
    cv2.imwrite(str(path), image)
    record = ImageRecord(str(path), 200, 200, Domain("leukemiaattri", "H", "40X", "C1"),
                         boxes_xyxy=[[60, 60, 140, 140], [0, 0, 20, 20]], cell_types=["blast", "rbc"],
                         attributes={"leukemiaattri_nucleolus": ["prominent", "unknown"]})
    spec = CropSpec(32, 25.0, 2.0)
    assert spec.scale_of(record) == 0.3125  # 40X preset of configs/optics.yaml
    cells, issues = build_cell_set([record], default_heads(), spec, progress=False)
    assert len(cells) == 1 and issues == [] and int(cells.type_allowed[0].sum()) == 4  # blast: 4 members
