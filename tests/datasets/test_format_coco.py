"""COCO JSON: round trips, LeukemiaAttri keys and codes, and bad inputs reported one per line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from smearscope.datasets.formats._common import LEUKEMIAATTRI_CLASSES
from smearscope.datasets.formats.coco import load_coco, save_coco
from smearscope.datasets.records import Domain, ImageRecord


def write_image(path: Path, width: int = 80, height: int = 60) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((height, width, 3), 220, np.uint8)
    cv2.circle(image, (width // 2, height // 2), min(width, height) // 4, (120, 40, 160), -1)
    if not cv2.imwrite(str(path), image):
        raise RuntimeError(f"could not write {path}")
    return path


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_round_trip_keeps_boxes_types_attributes_domain_and_scores(tmp_path):
    a = write_image(tmp_path / "images" / "4_15_1000_ALL.png")
    b = write_image(tmp_path / "images" / "sub" / "b.jpg", 64, 48)
    domain = Domain("leukemiaattri", "H", "100X", "C1", patient="4", diagnosis="ALL", um_per_px=0.1, split="train")
    records = [
        ImageRecord(str(a), 80, 60, domain, [[1.25, 2, 30, 40], [40, 10, 80, 60]], ["myeloblast", "neutrophil"],
                    ["Myeloblast", "Neutrophil"],
                    {"leukemiaattri_cell_size": ["large", "unknown"], "wbcatt_nucleus_shape": ["irregular", "unknown"]},
                    scores=[0.9, 0.4], info={"reannotation": ["LYT", None]}),
        ImageRecord(str(b), 64, 48, Domain("bccd", split="val"), [[5, 5, 20, 25]], ["wbc"], ["WBC"]),
        ImageRecord(str(a), 80, 60, Domain("coco")),
    ]
    path = save_coco(records, tmp_path / "out" / "ann.json", image_root=tmp_path / "images")
    result = load_coco(path, image_root=tmp_path / "images", source="coco")
    assert result.issues == []
    assert len(result.records) == 3
    for original, loaded in zip(records, result.records):
        assert Path(loaded.path).resolve() == Path(original.path).resolve()
        assert (loaded.width, loaded.height) == (original.width, original.height)
        np.testing.assert_allclose(loaded.boxes_xyxy, original.boxes_xyxy, atol=1e-3)
        assert loaded.cell_types == original.cell_types
        assert loaded.source_labels == original.source_labels
        assert loaded.domain == original.domain
        assert loaded.info == original.info
    first = result.records[0]
    assert first.attribute("leukemiaattri_cell_size", 0) == "large"
    assert first.attribute("wbcatt_nucleus_shape", 0) == "irregular"
    assert first.attribute("leukemiaattri_nucleolus", 0) == "unknown"
    np.testing.assert_allclose(first.scores, [0.9, 0.4])
    assert result.records[1].scores is None


def test_leukemiaattri_records_get_documented_categories_and_integer_codes(tmp_path):
    image = write_image(tmp_path / "x.png")
    record = ImageRecord(str(image), 80, 60, Domain("leukemiaattri"), [[1, 1, 20, 20], [30, 30, 50, 50]],
                         ["lymphoblast", "artifact"], ["Lymphoblast", "None"],
                         {"leukemiaattri_cell_size": ["large", "unknown"],
                          "leukemiaattri_nuclear_chromatin": ["coarse", "unknown"]})
    data = json.loads(save_coco([record], tmp_path / "x.json").read_text())
    assert [(c["id"], c["name"]) for c in data["categories"]] == list(enumerate(LEUKEMIAATTRI_CLASSES))
    blast, artifact = data["annotations"]
    assert blast["category_id"] == 2 and artifact["category_id"] == 0
    assert blast["cell_size"] == 2 and blast["nuclear_chromatio"] == 1 and blast["cytoplasm"] == 4
    assert artifact["cell_size"] == 4
    assert blast["attributes"]["leukemiaattri_cell_size"] == "large"


def test_source_attribute_keys_codes_and_strings_are_decoded(tmp_path):
    write_image(tmp_path / "a.png")
    ann = {"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 1, 10, 10]}
    data = {
        # no width/height: read from the file; a path from the annotators' machine: found by name
        "images": [{"id": 7, "file_name": "C:\\data\\Images\\train\\a.png"}],
        "categories": [{"id": 3, "name": "Myeloblast"}, {"id": 0, "name": "None"}],
        "annotations": [
            {**ann, "cell_size": 2, "nuclear_chromatio": 1, "nuclear_shape": "irregular", "nucleolus": "0",
             "cytoplasm": 4, "cytoplasmic_basophilia": 2, "cytoplasmic_vacuoles": 7},
            {**ann, "id": 2, "category_id": 0, "cell_size": 4, "attributes": {"occluded": False}},
        ],
    }
    (tmp_path / "a.json").write_text(json.dumps(data))
    result = load_coco(tmp_path / "a.json", source="leukemiaattri")
    assert result.issues == []
    (rec,) = result.records
    assert (rec.width, rec.height) == (80, 60)
    assert rec.cell_types == ["myeloblast", "artifact"]
    got = {name.removeprefix("leukemiaattri_"): values[0] for name, values in rec.attributes.items()}
    assert got == {"cell_size": "large", "nuclear_chromatin": "coarse", "nuclear_shape": "irregular",
                   "nucleolus": "inconspicuous", "cytoplasm": "unknown", "cytoplasmic_basophilia": "unknown",
                   "cytoplasmic_vacuoles": "unknown"}
    assert rec.attribute("leukemiaattri_cell_size", 1) == "unknown"
    assert rec.attribute("leukemiaattri_nucleolus", 1) == "unknown"


def _good_and_bad(tmp_path: Path, case: str) -> Path:
    """A COCO file with one good image (two cells) and one thing wrong, named by ``case``."""
    write_image(tmp_path / "good.png")
    bad = write_image(tmp_path / "bad.png")
    images = [{"id": 1, "file_name": "good.png", "width": 80, "height": 60},
              {"id": 2, "file_name": "bad.png", "width": 80, "height": 60}]
    categories = [{"id": 1, "name": "WBC"}, {"id": 2, "name": "Platelets"}]
    annotations = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
                   {"id": 2, "image_id": 1, "category_id": 2, "bbox": [40, 30, 5, 5]}]
    bad_ann = {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 5, 10, 10]}
    if case == "truncated image":
        truncate(bad)
    elif case == "missing image file":
        bad.unlink()
    elif case == "annotation names a missing image":
        bad_ann["image_id"] = 99
    elif case == "zero-area box":
        bad_ann["bbox"] = [5, 5, 0, 10]
    elif case == "negative box":
        bad_ann["bbox"] = [5, 5, -4, 10]
    elif case == "unknown class name":
        categories.append({"id": 9, "name": "Unicorn"})
        bad_ann["category_id"] = 9
    elif case == "box outside the image":
        bad_ann["bbox"] = [70, 50, 40, 40]
    annotations.append(bad_ann)
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


@pytest.mark.parametrize("case, expected", [
    ("truncated image", "bad.png: truncated image file"),
    ("missing image file", "bad.png: image file not found"),
    ("annotation names a missing image", "annotation 3 names image_id 99"),
    ("zero-area box", "zero-area box"),
    ("negative box", "negative box"),
    ("unknown class name", "'Unicorn': unknown class name"),
    ("box outside the image", "lies outside the 80x60 image"),
])
def test_bad_input_is_one_issue_naming_the_file_and_the_rest_loads(tmp_path, case, expected):
    path = _good_and_bad(tmp_path, case)
    result = load_coco(path, source="bccd")
    assert len(result.issues) == 1, [str(i) for i in result.issues]
    message = str(result.issues[0])
    assert expected in message
    assert "\n" not in message
    assert str(path) in message
    good = [r for r in result.records if r.filename == "good.png"]
    assert len(good) == 1 and good[0].cell_types == ["wbc", "platelet"]
    bad = [r for r in result.records if r.filename == "bad.png"]
    assert all(len(r) == 0 for r in bad)


def test_box_a_few_pixels_over_the_edge_is_clipped_and_noted(tmp_path):
    write_image(tmp_path / "a.png")
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 80, "height": 60}],
            "categories": [{"id": 1, "name": "WBC"}],
            "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [60, 40, 22, 21]}]}
    (tmp_path / "a.json").write_text(json.dumps(data))
    result = load_coco(tmp_path / "a.json", source="bccd")
    np.testing.assert_allclose(result.records[0].boxes_xyxy, [[60, 40, 80, 60]])
    assert len(result.issues) == 1 and "clipped" in str(result.issues[0])


@pytest.mark.parametrize("text, expected", [
    ('{"images": [', "malformed JSON"),
    ('[1, 2]', "not a COCO detection file"),
    ('{"images": [], "annotations": {}}', "'annotations' is not a list"),
])
def test_unreadable_file_raises_one_line_error_naming_it(tmp_path, text, expected):
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_coco(path)
    message = str(info.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_save_coco_rejects_an_unknown_attribute_schema(tmp_path):
    with pytest.raises(ValueError, match="attribute_schema"):
        save_coco([], tmp_path / "x.json", attribute_schema="wbcatt")
