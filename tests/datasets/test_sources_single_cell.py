"""Single-cell source readers on tiny look-alike layouts made on the fly (real images via cv2)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile

from smearscope.datasets.sources.all_aria import load_all_aria
from smearscope.datasets.sources.aml_lmu import load_aml_lmu
from smearscope.datasets.sources.cellavision import load_cellavision
from smearscope.datasets.sources.cnmc import load_cnmc
from smearscope.datasets.sources.openmedlab_leukemia import load_openmedlab_leukemia
from smearscope.datasets.sources.pbc import load_pbc
from smearscope.datasets.sources.raabin import load_raabin

BROKEN = b"this is not an image"


def cell_image(size: tuple[int, int] = (40, 36), seed: int = 0) -> np.ndarray:
    """A pale field with one purple disc: a stand-in for a stained white cell (BGR)."""
    width, height = size
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), (215, 205, 235), dtype=np.uint8)
    centre = (width // 2 + int(rng.integers(-3, 4)), height // 2 + int(rng.integers(-3, 4)))
    cv2.circle(image, centre, min(width, height) // 3, (150, 60, 120), -1)
    return image


def write_image(path: Path, size: tuple[int, int] = (40, 36), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cell_image(size, seed)):
        raise RuntimeError(f"cv2 could not write {path}")
    return path


def write_broken(path: Path) -> Path:
    """A file that is no image at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(BROKEN)
    return path


def write_truncated(path: Path) -> Path:
    """A real JPEG or PNG cut short, as an interrupted download leaves it."""
    ok, data = cv2.imencode(path.suffix, cell_image())
    if not ok:
        raise RuntimeError(f"cv2 could not encode {path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes()[: len(data) // 2])
    return path


def by_name(records) -> dict:
    return {Path(r.path).name: r for r in records}


def issue_for(result, name: str) -> str:
    found = [i.reason for i in result.issues if name in i.path]
    assert found, f"no issue mentions {name}: {[str(i) for i in result.issues]}"
    return found[0]


def assert_whole_image_cell(record, width: int, height: int) -> None:
    assert (record.width, record.height) == (width, height)
    assert record.boxes_xyxy.tolist() == [[0.0, 0.0, float(width), float(height)]]


def test_openmedlab_leukemia(tmp_path: Path) -> None:
    base = tmp_path / "download" / "Leukemia"
    for name in ("1.bmp", "2.bmp", "3.bmp", "4.bmp", "stray.bmp"):
        write_image(base / "image" / name, (45, 45))
    write_broken(base / "image" / "5.bmp")
    (base / "train.txt").write_text("image/1.bmp 1\nimage/2.bmp 0\n")
    (base / "val.txt").write_text("name,label\n3.bmp,1\n5.bmp,0\n")
    (base / "test.txt").write_text("image/4.bmp 0\nimage/6.bmp 1\nimage/7.bmp maybe\n")

    result = load_openmedlab_leukemia(tmp_path / "download")
    records = by_name(result.records)
    assert sorted(records) == ["1.bmp", "2.bmp", "3.bmp", "4.bmp"]
    assert records["1.bmp"].cell_types == ["lymphoblast"] and records["1.bmp"].domain.split == "train"
    assert records["2.bmp"].cell_types == ["hematogone"] and records["2.bmp"].source_labels == ["0"]
    assert records["3.bmp"].domain.split == "val" and records["4.bmp"].domain.split == "test"
    assert records["1.bmp"].domain.source == "openmedlab_leukemia"
    assert_whole_image_cell(records["4.bmp"], 45, 45)
    assert "not a readable image" in issue_for(result, "5.bmp")
    assert "not found" in issue_for(result, "6.bmp")
    assert "maybe" in issue_for(result, "test.txt:3")
    assert "not listed" in issue_for(result, "stray.bmp")
    assert len(result.issues) == 4

    only_val = load_openmedlab_leukemia(base, splits=["val"])
    assert [Path(r.path).name for r in only_val.records] == ["3.bmp"]
    with pytest.raises(ValueError, match="unknown split"):
        load_openmedlab_leukemia(base, splits=["holdout"])


def test_all_aria(tmp_path: Path) -> None:
    root = tmp_path / "leukemia"
    write_image(root / "Original" / "Benign" / "WBC-Benign-001.jpg")
    write_image(root / "Original" / "Early" / "WBC-Malignant-Early-001.jpg")
    write_image(root / "Original" / "Pre" / "WBC-Malignant-Pre-001.jpg")
    write_image(root / "Original" / "[Malignant] Pro-B" / "WBC-Malignant-Pro-001.jpg")
    write_image(root / "Original" / "Pre" / "WBC-Malignant-Pro-002.jpg")  # misfiled
    write_truncated(root / "Original" / "Early" / "WBC-Malignant-Early-002.jpg")
    write_image(root / "Original" / "Unsorted" / "x.jpg")
    write_image(root / "Segmented" / "Benign" / "WBC-Benign-001.jpg")
    write_image(root / "Segmented" / "Pro" / "WBC-Malignant-Pro-001.jpg")

    result = load_all_aria(root)
    records = by_name(result.records)
    assert sorted(records) == [
        "WBC-Benign-001.jpg", "WBC-Malignant-Early-001.jpg", "WBC-Malignant-Pre-001.jpg", "WBC-Malignant-Pro-001.jpg",
    ]
    assert records["WBC-Benign-001.jpg"].cell_types == ["hematogone"]
    assert records["WBC-Malignant-Pro-001.jpg"].cell_types == ["lymphoblast"]
    assert records["WBC-Malignant-Pro-001.jpg"].source_labels == ["Pro"]
    assert records["WBC-Malignant-Early-001.jpg"].source_labels == ["Early"]
    assert_whole_image_cell(records["WBC-Benign-001.jpg"], 40, 36)
    assert "truncated" in issue_for(result, "Early-002.jpg")
    assert "folder says Pre" in issue_for(result, "Pro-002.jpg")
    assert "Unsorted" in [Path(i.path).name for i in result.issues]

    segmented = load_all_aria(root, variant="segmented")
    assert len(segmented.records) == 2 and not segmented.issues
    assert all("Segmented" in r.path for r in segmented.records)
    assert len(load_all_aria(root / "Segmented", variant="Segmented").records) == 2


def test_pbc(tmp_path: Path) -> None:
    base = tmp_path / "PBC_dataset_normal_DIB"
    write_image(base / "neutrophil" / "SNE_1001.jpg", (36, 36))
    write_image(base / "neutrophil" / "BNE_1002.jpg")
    write_image(base / "neutrophil" / "NEUTROPHIL_1003.jpg")
    write_image(base / "ig" / "MY_2001.jpg")
    write_image(base / "ig" / "PMY_2002.jpg")
    write_image(base / "ig" / "LY_2003.jpg")  # a lymphocyte prefix in the ig folder
    write_image(base / "platelet" / "PLATELET_3001.jpg")
    write_image(base / "platelet" / "XYZ_3002.jpg")
    write_truncated(base / "basophil" / "BA_4001.jpg")

    result = load_pbc(tmp_path)
    records = by_name(result.records)
    assert sorted(records) == [
        "BNE_1002.jpg", "MY_2001.jpg", "NEUTROPHIL_1003.jpg", "PLATELET_3001.jpg", "PMY_2002.jpg", "SNE_1001.jpg",
    ]
    assert records["SNE_1001.jpg"].cell_types == ["segmented_neutrophil"]
    assert records["SNE_1001.jpg"].source_labels == ["SNE"]
    assert records["BNE_1002.jpg"].cell_types == ["band_neutrophil"]
    assert records["NEUTROPHIL_1003.jpg"].cell_types == ["neutrophil"]
    assert records["MY_2001.jpg"].cell_types == ["myelocyte"]
    assert records["PMY_2002.jpg"].cell_types == ["promyelocyte"]
    assert records["PLATELET_3001.jpg"].cell_types == ["platelet"]
    assert_whole_image_cell(records["SNE_1001.jpg"], 36, 36)
    assert "does not belong in folder ig" in issue_for(result, "LY_2003.jpg")
    assert "'XYZ' is not a PBC label" in issue_for(result, "XYZ_3002.jpg")
    assert "truncated" in issue_for(result, "BA_4001.jpg")
    assert len(result.issues) == 3


def write_rgba_tiff(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = cell_image((40, 40), seed)[:, :, ::-1]
    alpha = np.full(rgb.shape[:2] + (1,), 255, dtype=np.uint8)
    tifffile.imwrite(path, np.concatenate([rgb, alpha], axis=2), photometric="rgb", extrasamples=["unassalpha"])
    return path


def test_aml_lmu(tmp_path: Path) -> None:
    base = tmp_path / "AML-Cytomorphology_LMU"
    images = base / "AML-Cytomorphology"
    write_rgba_tiff(images / "EBO" / "EBO_0014.tiff")
    write_rgba_tiff(images / "NGS" / "NGS_0001.tiff", seed=1)
    write_rgba_tiff(images / "PMB" / "PMB_0002.tiff", seed=2)
    write_rgba_tiff(images / "MYO" / "MYO_0003.tiff", seed=3)
    write_rgba_tiff(images / "MYO" / "MYO_0004.tiff", seed=4)
    write_broken(images / "LYT" / "LYT_0005.tiff")
    (base / "annotations.dat").write_text(
        "EBO/EBO_0014.tiff EBO LYT EBO\n"
        "NGS/NGS_0001.tiff NGS nan nan\n"
        "PMB/PMB_0002.tiff PMB PMO UNC\n"
        "MYO/MYO_0003.tiff XXX nan nan\n"
        "LYT/LYT_0005.tiff LYT nan nan\n"
        "KSC/KSC_0009.tiff KSC nan nan\n"
    )

    result = load_aml_lmu(tmp_path)
    records = by_name(result.records)
    assert sorted(records) == ["EBO_0014.tiff", "NGS_0001.tiff", "PMB_0002.tiff"]
    ebo = records["EBO_0014.tiff"]
    assert ebo.cell_types == ["erythroblast"] and ebo.source_labels == ["EBO"]
    assert ebo.info == {"reannotation_1": "LYT", "reannotation_2": "EBO"}
    assert records["NGS_0001.tiff"].info == {"reannotation_1": None, "reannotation_2": None}
    assert records["PMB_0002.tiff"].cell_types == ["promyelocyte"]
    assert records["PMB_0002.tiff"].source_labels == ["PMB"]
    assert records["PMB_0002.tiff"].info["reannotation_2"] == "UNC"
    assert_whole_image_cell(ebo, 40, 40)
    assert "unknown aml_lmu label 'XXX'" in issue_for(result, "MYO_0003.tiff")
    assert "not listed" in issue_for(result, "MYO_0004.tiff")
    assert "not a readable image" in issue_for(result, "LYT_0005.tiff")
    assert "not found" in issue_for(result, "ksc/ksc_0009.tiff")
    assert len(result.issues) == 4

    (base / "annotations.dat").unlink()
    by_folder = load_aml_lmu(base)
    assert len(by_folder.records) == 5
    assert "labels taken from the class folders" in issue_for(by_folder, "annotations.dat")


def test_cnmc(tmp_path: Path) -> None:
    base = tmp_path / "C-NMC_Leukemia"
    train = base / "training_data"
    write_image(train / "fold_0" / "all" / "UID_11_10_1_all.bmp", (45, 45))
    write_image(train / "fold_0" / "hem" / "UID_H10_43_1_hem.bmp", (45, 45))
    write_image(train / "fold_1" / "all" / "UID_12_3_2_all.bmp", (45, 45))
    write_image(train / "fold_1" / "all" / "UID_13_3_2_hem.bmp", (45, 45))  # misfiled
    write_image(train / "fold_2" / "hem" / "cell.bmp", (45, 45))  # no UID
    write_broken(train / "fold_2" / "all" / "UID_14_1_1_all.bmp")
    prelim = base / "validation_data" / "C-NMC_test_prelim_phase_data"
    write_image(prelim / "1.bmp", (45, 45))
    write_image(prelim / "2.bmp", (45, 45))
    write_image(prelim / "3.bmp", (45, 45))
    (base / "validation_data" / "C-NMC_test_prelim_phase_data_labels.csv").write_text(
        "Patient_ID,new_names,labels\nUID_57_29_1_all.bmp,1.bmp,1\nUID_H24_5_1_hem.bmp,2.bmp,0\nUID_60_1_1_all.bmp,4.bmp,1\n"
    )
    (base / "testing_data").mkdir()

    result = load_cnmc(tmp_path)
    records = by_name(result.records)
    assert sorted(records) == ["1.bmp", "2.bmp", "UID_11_10_1_all.bmp", "UID_12_3_2_all.bmp", "UID_H10_43_1_hem.bmp"]
    blast = records["UID_11_10_1_all.bmp"]
    assert blast.cell_types == ["lymphoblast"] and blast.source_labels == ["all"]
    assert blast.domain.patient == "11" and blast.domain.split == "train" and blast.info["fold"] == 0
    healthy = records["UID_H10_43_1_hem.bmp"]
    assert healthy.cell_types == ["hematogone"] and healthy.domain.patient == "H10"
    assert healthy.domain.diagnosis == "healthy"
    assert records["1.bmp"].domain.patient == "57" and records["1.bmp"].domain.split == "test"
    assert records["1.bmp"].cell_types == ["lymphoblast"]
    assert records["2.bmp"].domain.patient == "H24" and records["2.bmp"].cell_types == ["hematogone"]
    assert_whole_image_cell(records["2.bmp"], 45, 45)
    assert "folder says all" in issue_for(result, "UID_13_3_2_hem.bmp")
    assert "no patient" in issue_for(result, "cell.bmp")
    assert "not a readable image" in issue_for(result, "UID_14_1_1_all.bmp")
    assert "not listed" in issue_for(result, "3.bmp")
    assert "not found" in issue_for(result, "4.bmp")
    assert "no published labels" in issue_for(result, "testing_data")
    assert len(result.issues) == 6

    train_only = load_cnmc(base, splits=["train"])
    assert {r.domain.split for r in train_only.records} == {"train"}
    assert len(train_only.records) == 3


def test_raabin_cropped(tmp_path: Path) -> None:
    root = tmp_path / "Raabin-WBC"
    write_image(root / "Train" / "Neutrophil" / "a.jpg", (58, 58))
    write_image(root / "Train" / "Lymphocyte" / "b.jpg", (58, 58))
    write_image(root / "TestB" / "Monocyte" / "c.jpg", (58, 58))
    write_truncated(root / "TestA" / "Basophil" / "d.jpg")
    write_image(root / "TestA" / "Platelet" / "e.jpg", (58, 58))

    result = load_raabin(root, layout="cropped")
    records = by_name(result.records)
    assert sorted(records) == ["a.jpg", "b.jpg", "c.jpg"]
    assert records["a.jpg"].cell_types == ["neutrophil"] and records["a.jpg"].domain.split == "train"
    assert records["c.jpg"].cell_types == ["monocyte"] and records["c.jpg"].domain.split == "test"
    assert records["c.jpg"].info == {"subset": "TestB"}
    assert_whole_image_cell(records["b.jpg"], 58, 58)
    assert "truncated" in issue_for(result, "d.jpg")
    assert "not a Raabin-WBC class folder" in issue_for(result, "Platelet")
    assert len(result.issues) == 2


def test_raabin_original_smears(tmp_path: Path) -> None:
    folder = tmp_path / "originals" / "day1"
    write_image(folder / "smear1.jpg", (120, 100))
    (folder / "smear1.json").write_text(json.dumps({
        "Cell_0": {"Label1": "Large Lymph", "Label2": "Small Lymph", "x1": 10, "y1": 12, "x2": 40, "y2": 44},
        "Cell_1": {"Label1": "Neutrophil", "Label2": "Neutrophil", "x1": 119, "y1": 95, "x2": 80, "y2": 60},
        "Cell_2": {"Label1": "Alien", "Label2": "Alien", "x1": 1, "y1": 1, "x2": 5, "y2": 5},
        "Cell_3": {"Label1": "Monocyte", "Label2": "Monocyte", "x1": 100, "y1": 10, "x2": 160, "y2": 30},
        "Image": "smear1.jpg",
    }))
    write_truncated(folder / "smear2.jpg")
    (folder / "smear2.json").write_text(json.dumps({"Cell_0": {"Label1": "Monocyte", "x1": 1, "y1": 1, "x2": 9, "y2": 9}}))
    (folder / "smear3.json").write_text("{not json")
    (folder / "orphan.json").write_text(json.dumps({"Cell_0": {"Label1": "Monocyte"}}))

    result = load_raabin(tmp_path / "originals")
    assert len(result.records) == 1
    record = result.records[0]
    assert Path(record.path).name == "smear1.jpg" and (record.width, record.height) == (120, 100)
    assert record.boxes_xyxy.tolist() == [[10, 12, 40, 44], [80, 60, 119, 95]]
    assert record.cell_types == ["lymphocyte", "neutrophil"]
    assert record.source_labels == ["Large Lymph", "Neutrophil"]
    assert record.info["expert2_labels"] == ["Small Lymph", "Neutrophil"]
    assert "unknown raabin label 'Alien'" in issue_for(result, "#Cell_2")
    assert "outside the 120x100 image" in issue_for(result, "#Cell_3")
    assert "truncated" in issue_for(result, "smear2.jpg")
    assert "malformed JSON" in issue_for(result, "smear3.json")
    assert "no image with the same name" in issue_for(result, "orphan.json")
    assert len(result.issues) == 5
    with pytest.raises(ValueError, match="no Raabin-WBC"):
        load_raabin(tmp_path / "originals" / "day1" / "..", layout="cropped")


def test_cellavision(tmp_path: Path) -> None:
    base = tmp_path / "segmentation_WBC-master"
    folder = base / "Dataset 2"
    for number in (1, 2, 3, 4):
        write_image(folder / f"{number:03d}.bmp", (30, 30), seed=number)
    write_broken(folder / "005.bmp")
    mask = np.zeros((30, 30), dtype=np.uint8)
    cv2.circle(mask, (15, 15), 10, 128, -1)
    cv2.circle(mask, (15, 15), 5, 255, -1)
    cv2.imwrite(str(folder / "001.png"), mask)
    (base / "Class Labels of Dataset 2.csv").write_text(
        "image ID,class\n1,1\n2,5\n3,0\n5,2\n6,3\n"
    )

    result = load_cellavision(tmp_path)
    records = by_name(result.records)
    assert sorted(records) == ["001.bmp", "002.bmp"]
    assert records["001.bmp"].cell_types == ["neutrophil"]
    assert records["001.bmp"].info["mask_path"].endswith("001.png")
    assert records["002.bmp"].cell_types == ["basophil"] and records["002.bmp"].info["mask_path"] is None
    assert_whole_image_cell(records["002.bmp"], 30, 30)
    assert "class '0' is not 1-5" in issue_for(result, ".csv:4")
    assert "not a readable image" in issue_for(result, "005.bmp")
    assert "not found" in issue_for(result, "006.bmp")
    assert "not listed" in issue_for(result, "004.bmp")
    assert not [i for i in result.issues if "003.bmp" in i.path]
    assert len(result.issues) == 4
