"""The image record validates every per-cell field and names the file and field on error."""

import numpy as np
import pytest

from smearscope.datasets.records import Domain, ImageRecord

DOMAIN = Domain(source="phantom", microscope="H", magnification="100X", camera="C1")


def make(**kw):
    base = dict(path="slide/a.png", width=100, height=80, domain=DOMAIN,
                boxes_xyxy=[[10, 10, 30, 30], [40, 20, 90, 70]], cell_types=["lymphocyte", "myeloblast"])
    base.update(kw)
    return ImageRecord(**base)


def test_valid_record_keeps_cells_and_domain_name():
    rec = make(attributes={"leukemiaattri_nucleolus": ["inconspicuous", "unknown"]}, scores=[0.9, 0.5])
    assert len(rec) == 2
    assert rec.source_labels == ["lymphocyte", "myeloblast"]
    assert rec.domain.name == "H_100X_C1"
    assert rec.attribute("leukemiaattri_nucleolus", 1) == "unknown"
    assert rec.attribute("wbcatt_cell_size", 0) == "unknown"


@pytest.mark.parametrize("kw, field, message", [
    (dict(cell_types=["lymphocyte"]), "cell_types", "has 1 entries for 2 boxes"),
    (dict(boxes_xyxy=[[10, 10, 10, 30], [40, 20, 90, 70]]), "boxes_xyxy", "zero or negative area"),
    (dict(boxes_xyxy=[[30, 10, 10, 30], [40, 20, 90, 70]]), "boxes_xyxy", "zero or negative area"),
    (dict(boxes_xyxy=[[10, 10, 30, 30], [40, 20, 120, 70]]), "boxes_xyxy", "outside the 100x80 image"),
    (dict(cell_types=["lymphocyte", "dragon"]), "cell_types", "unknown type 'dragon'"),
    (dict(attributes={"leukemiaattri_nucleolus": ["huge", "prominent"]}), "attributes.leukemiaattri_nucleolus", "value 'huge'"),
    (dict(attributes={"colour": ["a", "b"]}), "attributes", "unknown attribute 'colour'"),
    (dict(scores=[0.5]), "scores", "has 1 entries"),
    (dict(width=0), "size", "not positive"),
])
def test_invalid_records_name_file_and_field(kw, field, message):
    with pytest.raises(ValueError) as info:
        make(**kw)
    text = str(info.value)
    assert text.startswith(f"slide/a.png: {field}: ")
    assert message in text
    assert "\n" not in text


def test_subset_by_mask_and_by_index():
    rec = make(attributes={"leukemiaattri_cytoplasm": ["scanty", "abundant"]}, scores=[0.9, 0.4])
    high = rec.subset(rec.scores > 0.5)
    assert high.cell_types == ["lymphocyte"]
    assert high.attributes["leukemiaattri_cytoplasm"] == ["scanty"]
    assert np.array_equal(rec.subset([1]).boxes_xyxy, [[40, 20, 90, 70]])
    assert len(rec.subset([])) == 0
