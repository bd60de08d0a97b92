"""Readers of the labelled single-cell sources: WBCAtt layout and typed BCCD fields."""

from __future__ import annotations

import csv
from collections import Counter

import pytest
from cell_support import make_wbcatt_folder

from smearscope.datasets.sources.bccd_types import load_bccd_types
from smearscope.datasets.sources.wbcatt import load_wbcatt


def test_wbcatt_fake_folder_reads_types_prefixes_and_attributes(wbcatt_folder):
    result = load_wbcatt(wbcatt_folder, "val", um_per_px=0.25)
    assert len(result.records) == 32 and result.issues == []
    first = result.records[0]
    assert first.cell_types == ["eosinophil"] and first.source_labels == ["EO"]
    assert first.boxes_xyxy.tolist() == [[0.0, 0.0, 96.0, 96.0]]
    assert first.domain.source == "wbcatt" and first.domain.split == "val" and first.domain.um_per_px == 0.25
    assert first.attributes["wbcatt_cytoplasm_colour"] == ["light blue"]
    assert first.attributes["wbcatt_granularity"] == ["yes"] and len(first.attributes) == 11
    assert result.records[1].cell_types == ["lymphocyte"]


def test_wbcatt_any_csv_name_and_bad_rows_are_reported(tmp_path):
    root = make_wbcatt_folder(tmp_path / "w", {"train": 4})
    rows = list(csv.DictReader((root / "pbc_attr_v1_train.csv").open()))
    rows[0]["label"] = "Dragon"
    rows[1]["path"] = "missing/none.png"
    rows[2]["granularity"] = "maybe"
    rows[3]["img_name"] = "SNE_1.png"
    rows[3]["label"] = "Neutrophil"
    with (root / "mine.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = load_wbcatt(root, "test", csv_name="mine.csv")
    reasons = [i.reason for i in result.issues]
    assert len(result.records) == 2
    assert any("unknown wbcatt label 'Dragon'" in r for r in reasons)
    assert any("image file not found" in r for r in reasons)
    assert any("granularity value 'maybe'" in r for r in reasons)
    assert result.records[0].attributes["wbcatt_granularity"] == ["unknown"]
    assert result.records[1].cell_types == ["segmented_neutrophil"] and result.records[1].source_labels == ["SNE"]
    assert all(":" in i.path for i in result.issues)  # file:line


def test_wbcatt_missing_csv_or_columns_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="WBCAtt CSV not found"):
        load_wbcatt(tmp_path, "train")
    (tmp_path / "pbc_attr_v1_train.csv").write_text("name,kind\na,b\n")
    with pytest.raises(ValueError, match="missing column"):
        load_wbcatt(tmp_path, "train")


@pytest.mark.shared_data
def test_wbcatt_real_data(shared_data):
    result = load_wbcatt(shared_data / "wbcatt", "val")
    assert len(result.records) == 1030 and result.issues == []
    groups = Counter(r.source_labels[0] for r in result.records)
    assert groups["EO"] == 314 and groups["SNE"] + groups["BNE"] + groups["NEUTROPHIL"] == 334
    assert {r.cell_types[0] for r in result.records} == {
        "eosinophil", "segmented_neutrophil", "band_neutrophil", "neutrophil", "monocyte", "basophil", "lymphocyte"}
    assert all(r.width >= 360 and r.attributes["wbcatt_cytoplasm_vacuole"][0] in ("no", "yes") for r in result.records)


@pytest.mark.shared_data
def test_bccd_types_real_data(shared_data):
    result = load_bccd_types(shared_data / "bccd")
    assert len(result.records) == 277
    assert Counter(r.cell_types[0] for r in result.records) == {
        "neutrophil": 166, "eosinophil": 64, "lymphocyte": 29, "monocyte": 17, "basophil": 1}
    assert all(len(r) == 1 for r in result.records)
    assert {r.domain.split for r in result.records} == {"train", "val"}
    scale = result.records[0].domain.um_per_px
    assert 0.06 < scale < 0.08  # RBC boxes of ~105 px for a 7.5 um RBC


def _voc(root, name: str, objects: list[tuple[str, list[int]]]) -> None:
    import cv2
    import numpy as np

    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "JPEGImages" / f"{name}.jpg"), np.full((120, 160, 3), 220, np.uint8))
    parts = [f"<object><name>{label}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
             f"<ymax>{b[3]}</ymax></bndbox></object>" for label, b in objects]
    (root / "Annotations" / f"{name}.xml").write_text(
        f"<annotation><filename>{name}.jpg</filename><size><width>160</width><height>120</height></size>{''.join(parts)}</annotation>")


def test_bccd_types_keep_fields_with_exactly_one_wbc(tmp_path):
    root = tmp_path / "bccd"
    rbcs = [("RBC", [10 + 12 * i, 10, 30 + 12 * i, 30]) for i in range(10)]
    _voc(root, "one", [("WBC", [40, 40, 90, 90])] + rbcs)
    _voc(root, "two", [("WBC", [10, 10, 50, 50]), ("WBC", [60, 60, 100, 100])])
    _voc(root, "none", rbcs[:2])
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "val.txt").write_text("one\ntwo\nnone\n")
    (root / "wbc_types.csv").write_text("image,wbc_type\none.jpg,eosinophil\ntwo.jpg,monocyte\nnone.jpg,lymphocyte\n")
    result = load_bccd_types(root)
    assert [r.filename for r in result.records] == ["one.jpg"]
    record = result.records[0]
    assert record.cell_types == ["eosinophil"] and record.boxes_xyxy.tolist() == [[40, 40, 90, 90]]
    assert record.domain.split == "val" and record.domain.um_per_px == pytest.approx(7.5 / 20)
    reasons = " ".join(i.reason for i in result.issues)
    assert "2 WBC boxes" in reasons and "0 WBC boxes" in reasons
    assert load_bccd_types(root, um_per_px=0.1).records[0].domain.um_per_px == 0.1
