"""``smearscope inspect`` and ``smearscope convert`` end to end on tiny folders made on the fly."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from smearscope.datasets.formats._common import LEUKEMIAATTRI_CLASSES
from smearscope.datasets.formats.coco import load_coco
from smearscope.datasets.formats.leukemiaattri import load_leukemiaattri, save_leukemiaattri
from smearscope.datasets.formats.voc import load_voc_folder
from smearscope.datasets.formats.yolo import load_yolo
from smearscope.datasets.records import Domain, ImageRecord
from smearscope.tools.cli import main


def write_image(path: Path, width: int = 80, height: int = 60) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), 205, np.uint8)
    cv2.circle(image, (25, 25), 10, (130, 40, 150), -1)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"could not write {path}")
    return path


def yolo_folder(root: Path, bad_line: str = "") -> Path:
    """images/{train,val}/, labels/{train,val}/, classes.txt: two images, three cells."""
    write_image(root / "images" / "train" / "a.jpg")
    write_image(root / "images" / "val" / "b.png", 64, 48)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.25 0.5\n1 0.2 0.2 0.1 0.1\n" + bad_line)
    (root / "labels" / "val" / "b.txt").write_text("2 0.5 0.5 0.125 0.125\n")
    (root / "classes.txt").write_text("WBC\nRBC\nPlatelets\n")
    return root


def cells(records) -> dict[str, tuple]:
    return {Path(r.path).name: (r.domain.split, r.source_labels, np.round(r.boxes_xyxy, 2).tolist()) for r in records}


@pytest.mark.parametrize("command, words", [
    ("inspect", ["FORMAT", "PATH", "leukemiaattri", "labels.zip", "Exit code 0", "--names"]),
    ("convert", ["--to", "--out", "--to-variant", "--domain", "OUT/annotations.json", "never modified"]),
])
def test_help_explains_the_arguments(capsys, command, words):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for word in words:
        assert word in text


def test_inspect_prints_summary_and_exit_code_follows_issues(tmp_path, capsys):
    good = yolo_folder(tmp_path / "good")
    assert main(["inspect", "yolo", str(good)]) == 0
    out = capsys.readouterr().out
    assert "images: 2 (2 with cells), cells: 3" in out
    assert "yolo train" in out and "issues: 0" in out
    assert [line.split() for line in out.splitlines() if line.strip().startswith("wbc")] == [["wbc", "1"]]

    bad = yolo_folder(tmp_path / "bad", bad_line="0 0.5 0.5\n")
    assert main(["inspect", "yolo", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "images: 2 (2 with cells), cells: 3" in out
    assert f"{bad / 'labels' / 'train' / 'a.txt'}: line 3: 3 columns" in out
    assert "issues: 1" in out


def test_inspect_of_a_missing_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["inspect", "voc", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("smearscope inspect: error:") and "folder not found" in err and "\n" not in err


def test_convert_yolo_to_coco_to_voc_and_back_keeps_every_cell(tmp_path, capsys):
    source = yolo_folder(tmp_path / "in")
    original = load_yolo(source / "images", source / "labels", ["WBC", "RBC", "Platelets"], "txl").records
    assert main(["convert", "yolo", str(source), "--to", "coco", "--out", str(tmp_path / "coco")]) == 0
    assert main(["convert", "coco", str(tmp_path / "coco" / "annotations.json"), "--to", "voc",
                 "--out", str(tmp_path / "voc")]) == 0
    assert main(["convert", "voc", str(tmp_path / "voc"), "--to", "yolo", "--out", str(tmp_path / "yolo")]) == 0
    assert "wrote 2 as yolo" in capsys.readouterr().out
    via_coco = load_coco(tmp_path / "coco" / "annotations.json").records
    via_voc = load_voc_folder(tmp_path / "voc").records
    back = load_yolo(tmp_path / "yolo" / "images", tmp_path / "yolo" / "labels",
                     (tmp_path / "yolo" / "classes.txt").read_text().split("\n")[:-1], "txl").records
    assert cells(via_coco) == cells(original)
    assert cells(via_voc) == cells(original)
    assert cells(back) == cells(original)
    assert (source / "labels" / "train" / "a.txt").read_text().startswith("0 0.5 0.5 0.25 0.5")


def test_convert_leukemiaattri_to_attridet_yolo_keeps_attributes(tmp_path, capsys):
    image = write_image(tmp_path / "src" / "3_1_1000_CLL.png")
    record = ImageRecord(str(image), 80, 60, Domain("phantom", "L", "40X", "C1", split="test"),
                         [[5, 5, 30, 30], [40, 20, 60, 50]], ["lymphocyte", "basophil"],
                         attributes={"leukemiaattri_cytoplasm": ["scanty", "unknown"]})
    save_leukemiaattri([record], tmp_path / "la")
    assert main(["convert", "leukemiaattri", str(tmp_path / "la"), "--to", "yolo", "--out", str(tmp_path / "y")]) == 0
    assert "leukemiaattri_cytoplasm" in capsys.readouterr().out
    names = (tmp_path / "y" / "classes.txt").read_text().splitlines()
    assert names == list(LEUKEMIAATTRI_CLASSES)
    label = (tmp_path / "y" / "labels" / "test" / "3_1_1000_CLL.txt").read_text().splitlines()
    assert [len(line.split()) for line in label] == [12, 12]
    (back,) = load_yolo(tmp_path / "y" / "images", tmp_path / "y" / "labels", names, "leukemiaattri").records
    assert back.source_labels == ["Lymphocyte", "Basophil"]
    assert back.attributes["leukemiaattri_cytoplasm"] == ["scanty", "unknown"]


def test_convert_to_leukemiaattri_skips_cells_it_cannot_hold_and_reports_them(tmp_path, capsys):
    voc = tmp_path / "voc"
    (voc / "Annotations").mkdir(parents=True)
    for name, label in (("eo", "eosinophil"), ("red", "RBC")):
        write_image(voc / "JPEGImages" / f"{name}.jpg")
        (voc / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><object><name>{label}</name><bndbox><xmin>5</xmin>"
            "<ymin>5</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object></annotation>")
    code = main(["convert", "voc", str(voc), "--to", "leukemiaattri", "--out", str(tmp_path / "la"), "--domain", "H_40X_C2"])
    assert code == 1
    out = capsys.readouterr().out
    assert f"{voc / 'JPEGImages' / 'red.jpg'}: skipped: cell 0 ('RBC', type rbc) has no LeukemiaAttri class" in out
    (rec,) = load_leukemiaattri(tmp_path / "la").records
    assert rec.domain.name == "H_40X_C2" and rec.domain.split == "train" and rec.source_labels == ["Eosinophil"]


def test_convert_refuses_an_output_inside_the_input(tmp_path, capsys):
    source = yolo_folder(tmp_path / "in")
    assert main(["convert", "yolo", str(source), "--to", "coco", "--out", str(source / "converted")]) == 1
    assert "must not be inside the input folder" in capsys.readouterr().err
    assert not (source / "converted").exists()
