"""YOLO txt: plain / AttriDet / LLD lines, round trips, bad lines, and the real TXL-Raabin set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from smearscope.datasets.formats.yolo import load_yolo, read_class_names, save_yolo
from smearscope.datasets.records import Domain, ImageRecord

NAMES = ["WBC", "RBC", "Platelets"]


def write_image(path: Path, width: int = 80, height: int = 60) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), 210, np.uint8)
    cv2.rectangle(image, (10, 10), (30, 30), (90, 30, 150), -1)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"could not write {path}")
    return path


def write_label(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_plain_round_trip_with_split_folders(tmp_path):
    a = write_image(tmp_path / "images" / "train" / "a.jpg")
    b = write_image(tmp_path / "images" / "val" / "b.png", 64, 48)
    records = [
        ImageRecord(str(a), 80, 60, Domain("txl", split="train"), [[0, 0, 20, 30], [50.5, 10, 80, 60]],
                    ["wbc", "rbc"], ["WBC", "RBC"]),
        ImageRecord(str(b), 64, 48, Domain("txl", split="val"), [[1, 2, 3, 4]], ["platelet"], ["Platelets"]),
    ]
    paths = save_yolo(records, tmp_path / "labels", NAMES, image_root=tmp_path / "images")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in paths) == ["labels/train/a.txt", "labels/val/b.txt"]
    result = load_yolo(tmp_path / "images", tmp_path / "labels", NAMES, "txl")
    assert result.issues == []
    loaded = {r.filename: r for r in result.records}
    for original in records:
        got = loaded[original.filename]
        assert got.domain == original.domain
        assert got.cell_types == original.cell_types and got.source_labels == original.source_labels
        np.testing.assert_allclose(got.boxes_xyxy, original.boxes_xyxy, atol=1e-3)
        assert got.attributes == {}


def test_attridet_round_trip_keeps_leukemiaattri_attributes(tmp_path):
    image = write_image(tmp_path / "images" / "4_15_1000_ALL.png")
    names = ["None", "Myeloblast", "Lymphoblast"]
    record = ImageRecord(str(image), 80, 60, Domain("leukemiaattri"), [[1, 1, 20, 20], [30, 30, 50, 50]],
                         ["lymphoblast", "artifact"], ["Lymphoblast", "None"],
                         {"leukemiaattri_cell_size": ["large", "unknown"],
                          "leukemiaattri_nucleolus": ["prominent", "unknown"]})
    (path,) = save_yolo([record], tmp_path / "labels", names, variant="attridet")
    first = path.read_text().splitlines()[0].split()
    assert len(first) == 12 and first[0] == "2" and first[5] == "2" and first[8] == "1" and first[6] == "4"
    (loaded,) = load_yolo(tmp_path / "images", tmp_path / "labels", names, "leukemiaattri").records
    np.testing.assert_allclose(loaded.boxes_xyxy, record.boxes_xyxy, atol=1e-3)
    assert loaded.source_labels == ["Lymphoblast", "None"]
    for name in record.attributes:
        assert loaded.attributes[name] == record.attributes[name]
    assert loaded.attributes["leukemiaattri_cytoplasm"] == ["unknown", "unknown"]


def test_attribute_codes_two_and_four_and_the_lld_variant(tmp_path):
    write_image(tmp_path / "images" / "x.png")
    write_label(tmp_path / "labels" / "x.txt",
                "1 0.5 0.5 0.2 0.2 2 2 0 1 4 1 0\n"              # AttriDet: cell_size 2 = large, chromatin 2 = n/a
                "0 0.25 0.25 0.1 0.1 .1 .2 .3 .4 0 1 2 4 1 0 1\n")  # LLD: px1 px2 py1 py2 before the attributes
    result = load_yolo(tmp_path / "images", tmp_path / "labels", ["None", "Myeloblast"], "leukemiaattri")
    assert result.issues == []
    (rec,) = result.records
    assert rec.cell_types == ["myeloblast", "artifact"]
    assert rec.attributes["leukemiaattri_cell_size"] == ["large", "small"]
    assert rec.attributes["leukemiaattri_nuclear_chromatin"] == ["unknown", "coarse"]
    assert rec.attributes["leukemiaattri_nuclear_shape"] == ["regular", "unknown"]
    assert rec.attributes["leukemiaattri_cytoplasm"] == ["unknown", "abundant"]
    assert rec.attributes["leukemiaattri_nucleolus"] == ["prominent", "unknown"]
    assert rec.attributes["leukemiaattri_cytoplasmic_vacuoles"] == ["absent", "prominent"]
    np.testing.assert_allclose(rec.boxes_xyxy[0], [32, 24, 48, 36])


def test_image_without_label_file_has_no_cells(tmp_path):
    write_image(tmp_path / "images" / "empty.png")
    (tmp_path / "labels").mkdir()
    result = load_yolo(tmp_path / "images", tmp_path / "labels", NAMES, "txl")
    assert result.issues == [] and len(result.records) == 1 and len(result.records[0]) == 0


@pytest.mark.parametrize("case, label, expected", [
    ("wrong column count", "0 0.5 0.5 0.2\n", "line 2: 4 columns; expected 5 or 12 or 16"),
    ("non-numeric", "0 0.5 abc 0.2 0.2\n", "line 2: non-numeric value 'abc'"),
    ("out of range", "0 1.4 0.5 0.2 0.2\n", "line 2: box 1.4 0.5 0.2 0.2 leaves the normalised range"),
    ("zero-area box", "0 0.5 0.5 0 0.2\n", "line 2: zero-area box"),
    ("negative box", "0 0.5 0.5 -0.1 0.2\n", "line 2: negative box"),
    ("class id out of range", "7 0.5 0.5 0.2 0.2\n", "line 2: class id 7 is not among the 4 class names"),
    ("unknown class name", "3 0.5 0.5 0.2 0.2\n", "line 2: unknown class name 'Unicorn'"),
])
def test_bad_line_is_one_issue_with_file_and_line_and_the_rest_loads(tmp_path, case, label, expected):
    write_image(tmp_path / "images" / "good.png")
    write_label(tmp_path / "labels" / "good.txt", "0 0.5 0.5 0.25 0.25\n")
    write_image(tmp_path / "images" / "bad.png")
    bad = write_label(tmp_path / "labels" / "bad.txt", "1 0.2 0.2 0.1 0.1\n" + label)
    result = load_yolo(tmp_path / "images", tmp_path / "labels", NAMES + ["Unicorn"], "txl")
    assert len(result.issues) == 1, [str(i) for i in result.issues]
    message = str(result.issues[0])
    assert message.startswith(f"{bad}: ") and expected in message and "\n" not in message
    loaded = {r.filename: r for r in result.records}
    assert loaded["good.png"].cell_types == ["wbc"]
    assert loaded["bad.png"].cell_types == ["rbc"]  # the good line of the bad file is kept


@pytest.mark.parametrize("suffix, keep, expected", [
    (".png", -30, "truncated image file"),
    (".jpg", -30, "truncated image file"),
    (".png", 0, "empty file"),
])
def test_broken_image_and_orphan_label_are_reported(tmp_path, suffix, keep, expected):
    write_image(tmp_path / "images" / "good.png")
    broken = write_image(tmp_path / "images" / f"broken{suffix}")
    broken.write_bytes(broken.read_bytes()[:keep])
    write_label(tmp_path / "labels" / "broken.txt", "0 0.5 0.5 0.2 0.2\n")
    orphan = write_label(tmp_path / "labels" / "orphan.txt", "0 0.5 0.5 0.2 0.2\n")
    result = load_yolo(tmp_path / "images", tmp_path / "labels", NAMES, "txl")
    messages = sorted(str(i) for i in result.issues)
    assert messages == sorted([f"{broken}: {expected}", f"{orphan}: label file has no image in {tmp_path / 'images'}"])
    assert [r.filename for r in result.records] == ["good.png"]


def test_class_names_from_classes_txt_and_data_yaml(tmp_path):
    (tmp_path / "classes.txt").write_text("WBC\nRBC\n\nPlatelets\n")
    (tmp_path / "a.yaml").write_text("names: {0: WBC, 2: Platelets, 1: RBC}\n")
    (tmp_path / "b.yaml").write_text("names: [WBC, RBC]\n")
    (tmp_path / "c.yaml").write_text("path: x\n")
    assert read_class_names(tmp_path / "classes.txt") == NAMES
    assert read_class_names(tmp_path / "a.yaml") == NAMES
    assert read_class_names(tmp_path / "b.yaml") == NAMES[:2]
    with pytest.raises(ValueError, match="c.yaml: has no 'names'"):
        read_class_names(tmp_path / "c.yaml")


def test_save_yolo_refuses_a_cell_outside_the_classes_and_writes_nothing(tmp_path):
    image = write_image(tmp_path / "a.png")
    good = ImageRecord(str(image), 80, 60, Domain("txl"), [[1, 1, 9, 9]], ["wbc"], ["WBC"])
    bad = ImageRecord(str(tmp_path / "b.png"), 80, 60, Domain("txl"), [[1, 1, 9, 9]], ["eosinophil"], ["Eosinophil"])
    with pytest.raises(ValueError, match=r"b.png: cell 0 \('Eosinophil', type eosinophil\) is not one of the classes"):
        save_yolo([good, bad], tmp_path / "labels", NAMES)
    assert not (tmp_path / "labels").exists()


def test_real_txl_raabin_loads_500_images_with_wbc_boxes(shared_data):
    root = shared_data / "txl_raabin"
    result = load_yolo(root / "images", root / "labels", read_class_names(root / "classes.txt"), "txl")
    assert result.issues == []
    assert len(result.records) == 500
    with_wbc = sum(1 for r in result.records if "wbc" in r.cell_types)
    assert with_wbc >= 490
    assert {r.domain.split for r in result.records} == {"train", "val", "test"}
    assert all((r.width, r.height) == (575, 575) for r in result.records)
