"""The LeukemiaAttri layout: domains, JSON vs txt, labels.zip, quirks, and the writer's round trip."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from smearscope.datasets.formats._common import LEUKEMIAATTRI_CLASSES
from smearscope.datasets.formats.leukemiaattri import (
    load_leukemiaattri,
    parse_domain_name,
    parse_file_name,
    save_leukemiaattri,
)
from smearscope.datasets.records import Domain, ImageRecord
from smearscope.datasets.schema import schema_attributes

SIZE = 96
# The fixture's COCO categories disagree with the documented order: Myeloblast and Lymphoblast swap ids.
PERMUTED = list(LEUKEMIAATTRI_CLASSES)
PERMUTED[1], PERMUTED[2] = PERMUTED[2], PERMUTED[1]
ATTRIBUTES = [s.qualified for s in schema_attributes("leukemiaattri")]
VALUES = [s.values for s in schema_attributes("leukemiaattri")]

# domain -> split -> file name -> cells (class name, xyxy box, 7 attribute codes as in the JSON)
TRUTH = {
    "H_100X_C1": {
        "train": {
            "4_15_1000_ALL.png": [("Lymphoblast", (10, 10, 40, 40), (2, 1, 1, 1, 0, 1, 0)),
                                  ("None", (50, 5, 70, 25), (4, 4, 4, 4, 4, 4, 4))],
            "4_16_1000_ALL.png": [("Myeloblast", (20, 20, 60, 50), (1, 0, 0, 1, 1, 0, 1))],
        },
        "test": {"9_1_1000_AML.png": []},
    },
    "L_100X_C2": {
        "train": {
            "4_15_1000_ALL.png": [("Myeloblast", (12, 11, 41, 42), (0, 1, 0, 0, 1, 1, 0))],
            "smear.png": [("Neutrophil", (5, 5, 25, 25), (0, 0, 1, 0, 1, 0, 0))],
        },
    },
}


def write_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((SIZE, SIZE, 3), 215, np.uint8)
    cv2.circle(image, (30, 30), 12, (140, 30, 120), -1)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"could not write {path}")
    return path


def coco_json(cells_by_file: dict) -> str:
    images, annotations = [], []
    for image_id, (name, cells) in enumerate(cells_by_file.items()):
        images.append({"id": image_id, "file_name": name, "width": SIZE, "height": SIZE})
        for label, (x1, y1, x2, y2), codes in cells:
            ann = {"id": len(annotations), "image_id": image_id, "category_id": PERMUTED.index(label),
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
            ann.update({s.key: c for s, c in zip(schema_attributes("leukemiaattri"), codes)})
            annotations.append(ann)
    categories = [{"id": i, "name": n} for i, n in enumerate(PERMUTED)]
    return json.dumps({"images": images, "annotations": annotations, "categories": categories})


def txt_lines(cells: list) -> str:
    lines = []
    for label, (x1, y1, x2, y2), codes in cells:
        # txt files mark "not applicable" as 2 for the binary attributes
        txt_codes = [c if c != 4 or i == 0 else 2 for i, c in enumerate(codes)]
        box = [(x1 + x2) / 2 / SIZE, (y1 + y2) / 2 / SIZE, (x2 - x1) / SIZE, (y2 - y1) / SIZE]
        lines.append(" ".join([str(PERMUTED.index(label))] + [f"{v:.6f}" for v in box] + [str(c) for c in txt_codes]))
    return "".join(line + "\n" for line in lines)


@pytest.fixture
def dataset(tmp_path) -> Path:
    """Parent folder of LeukemiaAttri_Dataset/: a JSON + txt domain with ``Images``, a domain
    with ``images`` and its txt labels only in labels.zip, and an empty domain."""
    root = tmp_path / "download" / "LeukemiaAttri_Dataset"
    h = root / "H_100X_C1"
    for split, files in TRUTH["H_100X_C1"].items():
        for name, cells in files.items():
            write_image(h / "Images" / split / name)
            (h / "txt_labels" / "AttriDet" / split).mkdir(parents=True, exist_ok=True)
            (h / "txt_labels" / "AttriDet" / split / f"{Path(name).stem}.txt").write_text(txt_lines(cells))
        (h / "json_labels").mkdir(exist_ok=True)
        (h / "json_labels" / f"{split}.json").write_text(coco_json(files))
    low = root / "L_100X_C2"
    with zipfile.ZipFile(_mkdir(low) / "labels.zip", "w") as archive:
        for name, cells in TRUTH["L_100X_C2"]["train"].items():
            write_image(low / "images" / "train" / name)
            archive.writestr(f"labels/txt_labels/AttriDet/train/{Path(name).stem}.txt", txt_lines(cells))
    _mkdir(root / "L_10X_C1" / "Images" / "train")
    return root.parent


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def assert_matches_truth(records: list[ImageRecord], domains=("H_100X_C1", "L_100X_C2"), splits=("train", "test")):
    expected = {(d, s, name): cells for d in domains for s, files in TRUTH[d].items() if s in splits
                for name, cells in files.items()}
    got = {(r.domain.name, r.domain.split, r.filename): r for r in records}
    assert sorted(got) == sorted(expected)
    for key, cells in expected.items():
        rec = got[key]
        assert rec.source_labels == [c[0] for c in cells], key
        np.testing.assert_allclose(rec.boxes_xyxy, np.array([c[1] for c in cells]).reshape(-1, 4), atol=1.0)
        for i, (_, _, codes) in enumerate(cells):
            want = [VALUES[j][c] if c < len(VALUES[j]) else "unknown" for j, c in enumerate(codes)]
            assert [rec.attribute(name, i) for name in ATTRIBUTES] == want, (key, i)


def test_reads_every_domain_reports_the_empty_one_and_modifies_nothing(dataset):
    before = snapshot(dataset)
    result = load_leukemiaattri(dataset)
    assert [str(i) for i in result.issues] == [f"{dataset / 'LeukemiaAttri_Dataset' / 'L_10X_C1'}: empty domain folder; skipped"]
    assert_matches_truth(result.records)
    by_name = {(r.domain.name, r.filename): r for r in result.records}
    first = by_name[("H_100X_C1", "4_15_1000_ALL.png")]
    assert first.domain == Domain("leukemiaattri", "H", "100X", "C1", patient="4", diagnosis="ALL", split="train")
    assert first.cell_types == ["lymphoblast", "artifact"]
    assert by_name[("L_100X_C2", "smear.png")].domain.patient is None
    assert snapshot(dataset) == before


def test_dataset_folder_itself_txt_preference_and_filters(dataset):
    folder = dataset / "LeukemiaAttri_Dataset"
    from_txt = load_leukemiaattri(folder, prefer="txt")
    assert_matches_truth(from_txt.records)
    only = load_leukemiaattri(folder, domains=["h_100x_c1"], splits=["train"])
    assert only.issues == []
    assert_matches_truth(only.records, domains=("H_100X_C1",), splits=("train",))
    with pytest.raises(ValueError, match="H_40X_C1 not found; present: H_100X_C1, L_100X_C2, L_10X_C1"):
        load_leukemiaattri(folder, domains=["H_40X_C1"])


def test_coco_json_inside_labels_zip_is_read_in_memory(dataset):
    folder = dataset / "LeukemiaAttri_Dataset" / "H_40X_C2"
    files = TRUTH["H_100X_C1"]["train"]
    for name in files:
        write_image(folder / "Images" / "train" / name)
    with zipfile.ZipFile(folder / "labels.zip", "w") as archive:
        archive.writestr("H_40X_C2/json_labels/train.json", coco_json(files))
    before = snapshot(dataset)
    result = load_leukemiaattri(dataset, domains=["H_40X_C2"])
    assert result.issues == []
    got = {r.filename: (r.source_labels, r.domain.name) for r in result.records}
    assert got == {name: ([c[0] for c in cells], "H_40X_C2") for name, cells in files.items()}
    assert snapshot(dataset) == before


def test_txt_ids_follow_coco_categories_only_when_some_exist(dataset):
    folder = dataset / "LeukemiaAttri_Dataset"
    shutil.rmtree(folder / "H_100X_C1" / "json_labels")
    result = load_leukemiaattri(folder, domains=["L_100X_C2"])
    labels = {r.filename: r.source_labels for r in result.records}
    # without any COCO categories the documented order reads id 2 as Lymphoblast
    assert labels["4_15_1000_ALL.png"] == ["Lymphoblast"]


def test_malformed_json_is_reported_and_txt_labels_are_used(dataset):
    bad = dataset / "LeukemiaAttri_Dataset" / "H_100X_C1" / "json_labels" / "test.json"
    bad.write_text('{"images": [')
    result = load_leukemiaattri(dataset, domains=["H_100X_C1"])
    assert len(result.issues) == 1
    message = str(result.issues[0])
    assert message.startswith(f"{bad}: malformed JSON") and "\n" not in message
    assert_matches_truth(result.records, domains=("H_100X_C1",))


def test_labels_missing_for_a_split_are_reported(dataset):
    write_image(dataset / "LeukemiaAttri_Dataset" / "L_100X_C2" / "images" / "test" / "1_1_1000_CML.png")
    result = load_leukemiaattri(dataset, domains=["L_100X_C2"])
    assert len(result.issues) == 1 and "no labels for split 'test'" in str(result.issues[0])
    assert_matches_truth(result.records, domains=("L_100X_C2",))


def test_a_folder_without_domains_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="no LeukemiaAttri domain folders"):
        load_leukemiaattri(tmp_path)


@pytest.mark.parametrize("name, expected", [
    ("H_100X_C1", ("H", "100X", "C1")),
    ("l_10x_c2", ("L", "10X", "C2")),
    ("H_20X_C1", None),
    ("labels", None),
])
def test_parse_domain_name(name, expected):
    domain = parse_domain_name(name)
    assert (None if domain is None else (domain.microscope, domain.magnification, domain.camera)) == expected


@pytest.mark.parametrize("name, expected", [
    ("4_15_1000_ALL.png", ("4", "ALL")),
    ("P12_3_1000_apml.png", ("P12", "APML")),
    ("a_b_7_1000_CLL.png", ("a_b", "CLL")),
    ("4_15_1000_XYZ.png", (None, None)),
    ("smear.png", (None, None)),
])
def test_parse_file_name(name, expected):
    assert parse_file_name(name) == expected


def _records(tmp_path: Path) -> list[ImageRecord]:
    cells = [("myeloblast", "Myeloblast"), ("segmented_neutrophil", "segmented_neutrophil"), ("artifact", "None")]
    records = []
    for n, (domain, split) in enumerate([("H_100X_C1", "train"), ("H_100X_C1", "test"), ("L_40X_C2", "train")]):
        path = write_image(tmp_path / "phantom" / f"{n}_{n + 1}_1000_AML.png")
        m, mag, cam = domain.split("_")
        records.append(ImageRecord(
            str(path), SIZE, SIZE, Domain("phantom", m, mag, cam, split=split),
            boxes_xyxy=[[1.3, 2.7, 30.2, 40.9], [40, 10, 95.6, 96], [60, 60, 70, 70]],
            cell_types=[c[0] for c in cells], source_labels=[c[1] for c in cells],
            attributes={"leukemiaattri_cell_size": ["large", "medium", "unknown"],
                        "leukemiaattri_nucleolus": ["prominent", "inconspicuous", "unknown"],
                        "leukemiaattri_cytoplasmic_vacuoles": ["absent", "prominent", "unknown"]},
        ))
    return records


def test_writer_round_trips_through_json_and_txt(tmp_path):
    records = _records(tmp_path)
    out = tmp_path / "out"
    save_leukemiaattri(records, out)
    assert (out / "H_100X_C1" / "Images" / "test" / "1_2_1000_AML.png").is_file()
    assert (out / "L_40X_C2" / "txt_labels" / "AttriDet" / "train" / "2_3_1000_AML.txt").is_file()
    categories = json.loads((out / "H_100X_C1" / "json_labels" / "train.json").read_text())["categories"]
    assert [c["name"] for c in categories] == list(LEUKEMIAATTRI_CLASSES)
    for prefer in ("json", "txt"):
        result = load_leukemiaattri(out, prefer=prefer)
        assert result.issues == []
        loaded = {(r.domain.name, r.domain.split): r for r in result.records}
        assert len(loaded) == 3
        for original in records:
            got = loaded[(original.domain.name, original.domain.split)]
            assert got.filename == original.filename
            assert got.domain.patient == original.filename.split("_")[0] and got.domain.diagnosis == "AML"
            np.testing.assert_allclose(got.boxes_xyxy, original.boxes_xyxy, atol=1.0)
            assert got.source_labels == ["Myeloblast", "Neutrophil", "None"]
            assert got.cell_types == ["myeloblast", "neutrophil", "artifact"]
            for name in ATTRIBUTES:
                assert [got.attribute(name, i) for i in range(3)] == [original.attribute(name, i) for i in range(3)]


def test_writer_leaves_images_already_in_place_and_uses_existing_images_folder(tmp_path):
    out = tmp_path / "out"
    placed = write_image(out / "H_10X_C2" / "images" / "train" / "5_1_1000_CML.png")
    stamp = placed.stat().st_mtime_ns
    record = ImageRecord(str(placed), SIZE, SIZE, Domain("phantom", "H", "10X", "C2", split="train"),
                         [[5, 5, 30, 30]], ["monocyte"])
    save_leukemiaattri([record], out)
    assert placed.stat().st_mtime_ns == stamp
    assert not (out / "H_10X_C2" / "Images").exists()
    (got,) = load_leukemiaattri(out).records
    assert got.source_labels == ["Monocyte"] and Path(got.path) == placed


@pytest.mark.parametrize("change, expected", [
    ({"domain": Domain("phantom", "H", "100X", "C1")}, "domain split is None"),
    ({"domain": Domain("phantom", None, "100X", "C1", split="train")}, "domain microscope is None"),
    ({"cell_types": ["rbc"]}, "cell 0 ('rbc', type rbc) has no LeukemiaAttri class"),
])
def test_writer_refuses_records_it_cannot_place_before_writing_anything(tmp_path, change, expected):
    good = _records(tmp_path)[0]
    fields = {"path": good.path, "width": SIZE, "height": SIZE, "boxes_xyxy": [[1, 1, 9, 9]],
              "cell_types": ["myeloblast"], "domain": good.domain}
    fields.update(change)
    bad = ImageRecord(**fields)
    with pytest.raises(ValueError) as info:
        save_leukemiaattri([good, bad], tmp_path / "out")
    assert str(info.value).startswith(f"{good.path}: ") and expected in str(info.value)
    assert not (tmp_path / "out").exists()
