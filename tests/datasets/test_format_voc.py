"""Pascal VOC XML: round trips, split lists, broken boxes and files, and the real BCCD set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from smearscope.datasets.formats.voc import load_voc, load_voc_folder, load_voc_split, save_voc
from smearscope.datasets.records import Domain, ImageRecord


def write_image(path: Path, width: int = 80, height: int = 60) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), 200, np.uint8)
    cv2.ellipse(image, (40, 30), (15, 10), 0, 0, 360, (100, 20, 140), -1)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"could not write {path}")
    return path


def voc_xml(filename: str, objects: list[tuple[str, tuple]], size: tuple[int, int] = (80, 60)) -> str:
    parts = [f"<annotation><filename>{filename}</filename>"
             f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"]
    for name, (x1, y1, x2, y2) in objects:
        parts.append(f"<object><name>{name}</name><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                     f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


def test_round_trip_keeps_boxes_labels_and_attributes(tmp_path):
    a = write_image(tmp_path / "JPEGImages" / "a.jpg")
    b = write_image(tmp_path / "JPEGImages" / "b.png", 64, 48)
    records = [
        ImageRecord(str(a), 80, 60, Domain("bccd"), [[1, 2, 30.5, 40], [40, 10, 80, 60]], ["wbc", "rbc"], ["WBC", "RBC"],
                    {"wbcatt_cell_size": ["big", "unknown"]}),
        ImageRecord(str(b), 64, 48, Domain("bccd")),
    ]
    save_voc(records, tmp_path / "Annotations")
    result = load_voc(tmp_path / "Annotations", tmp_path / "JPEGImages")
    assert result.issues == []
    loaded = {r.filename: r for r in result.records}
    for original in records:
        got = loaded[original.filename]
        np.testing.assert_allclose(got.boxes_xyxy, original.boxes_xyxy)
        assert got.cell_types == original.cell_types and got.source_labels == original.source_labels
        assert got.attributes == original.attributes
        assert (got.width, got.height) == (original.width, original.height)


def test_split_files_select_and_label_images(tmp_path):
    for name in ("a", "b", "c"):
        write_image(tmp_path / "JPEGImages" / f"{name}.jpg")
        (tmp_path / "Annotations").mkdir(exist_ok=True)
        (tmp_path / "Annotations" / f"{name}.xml").write_text(voc_xml(f"{name}.jpg", [("WBC", (5, 5, 20, 20))]))
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    (tmp_path / "ImageSets" / "Main" / "train.txt").write_text("a\nb\n")
    (tmp_path / "ImageSets" / "Main" / "val.txt").write_text("c 1\n")
    train = load_voc_split(tmp_path, "train")
    assert [r.filename for r in train.records] == ["a.jpg", "b.jpg"]
    assert {r.domain.split for r in train.records} == {"train"}
    everything = load_voc_folder(tmp_path)
    assert {r.filename: r.domain.split for r in everything.records} == {"a.jpg": "train", "b.jpg": "train", "c.jpg": "val"}
    with pytest.raises(ValueError, match="test.txt: split file not found"):
        load_voc_split(tmp_path, "test")


@pytest.mark.parametrize("case, expected", [
    ("malformed XML", "malformed XML"),
    ("missing image", "bad.jpg: image file not found"),
    ("truncated image", "bad.jpg: truncated image file"),
    ("zero-area box", "object 1 'WBC': zero-area box [5, 5, 5, 20]; skipped"),
    ("negative box", "object 1 'WBC': negative box [30, 5, 10, 20]"),
    ("unknown class name", "object 1 'Unicorn': unknown class name"),
    ("box far outside", "lies outside the 80x60 image; skipped"),
    ("box a pixel over", "exceeds the 80x60 image by 2 px: clipped"),
    ("no bndbox", "object 1 'WBC': no <name> or <bndbox>"),
])
def test_bad_input_is_one_issue_naming_the_file_and_the_rest_loads(tmp_path, case, expected):
    ann, img = tmp_path / "Annotations", tmp_path / "JPEGImages"
    ann.mkdir()
    write_image(img / "good.jpg")
    (ann / "good.xml").write_text(voc_xml("good.jpg", [("WBC", (10, 10, 30, 30))]))
    bad_image = write_image(img / "bad.jpg")
    bad = [("RBC", (40, 40, 50, 50)), ("WBC", (5, 5, 20, 20))]
    text = None
    if case == "malformed XML":
        text = "<annotation><filename>bad.jpg</filename>"
    elif case == "missing image":
        bad_image.unlink()
    elif case == "truncated image":
        bad_image.write_bytes(bad_image.read_bytes()[:-40])
    elif case == "zero-area box":
        bad[1] = ("WBC", (5, 5, 5, 20))
    elif case == "negative box":
        bad[1] = ("WBC", (30, 5, 10, 20))
    elif case == "unknown class name":
        bad[1] = ("Unicorn", (5, 5, 20, 20))
    elif case == "box far outside":
        bad[1] = ("WBC", (60, 40, 120, 90))
    elif case == "box a pixel over":
        bad[1] = ("WBC", (60, 40, 82, 60))
    elif case == "no bndbox":
        text = voc_xml("bad.jpg", bad).replace("<bndbox><xmin>5</xmin><ymin>5</ymin><xmax>20</xmax><ymax>20</ymax></bndbox>", "")
    bad_xml = ann / "bad.xml"
    bad_xml.write_text(text if text is not None else voc_xml("bad.jpg", bad))
    result = load_voc(ann, img)
    assert len(result.issues) == 1, [str(i) for i in result.issues]
    message = str(result.issues[0])
    assert message.startswith(f"{bad_xml}: ") and expected in message and "\n" not in message
    loaded = {r.filename: r for r in result.records}
    assert loaded["good.jpg"].cell_types == ["wbc"]
    if "bad.jpg" in loaded:
        assert loaded["bad.jpg"].source_labels[0] == "RBC"
        expected_cells = 2 if case == "box a pixel over" else 1
        assert len(loaded["bad.jpg"]) == expected_cells
        assert np.all(loaded["bad.jpg"].boxes_xyxy[:, 2] <= 80)


def test_save_voc_refuses_two_images_with_one_stem(tmp_path):
    records = [ImageRecord(str(tmp_path / d / "x.jpg"), 8, 8, Domain("bccd")) for d in ("a", "b")]
    with pytest.raises(ValueError, match="would overwrite"):
        save_voc(records, tmp_path / "Annotations")
    assert not (tmp_path / "Annotations").exists()


def test_real_bccd_loads_with_wbc_boxes_and_reports_its_broken_boxes(shared_data):
    root = shared_data / "bccd"
    result = load_voc_folder(root)
    assert len(result.records) == 292
    with_wbc = sum(1 for r in result.records if "wbc" in r.cell_types)
    assert with_wbc >= 285
    assert sum(r.cell_types.count("wbc") for r in result.records) >= 295
    assert 1 <= len(result.issues) <= 10
    assert all("\n" not in str(i) and str(i).startswith(str(root / "Annotations")) for i in result.issues)
    splits = [r.domain.split for r in result.records]
    assert splits.count("train") == 205 and splits.count("val") == 87
    assert len(load_voc_split(root, "val").records) == 87
