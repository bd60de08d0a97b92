"""Reading configured sources: formats, splits, domain filters and how each scale is decided."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from smearscope.datasets.formats.voc import save_voc
from smearscope.datasets.records import Domain, ImageRecord
from smearscope.detect.config import load_detector_config
from smearscope.detect.training_data import collect_training_data


def write_voc(root: Path) -> None:
    """A VOC folder: 4 train + 2 val fields, each with one WBC and twelve 20 px RBCs."""
    (root / "JPEGImages").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    records = []
    for i in range(6):
        image = np.full((120, 300, 3), (236, 200, 214), dtype=np.uint8)
        boxes, labels = [], []
        for k in range(12):
            cx = 20 + 22 * k
            cv2.circle(image, (cx, 90), 9, (210, 120, 130), -1)
            boxes.append((cx - 10, 80, cx + 10, 100))
            labels.append("rbc")
        cv2.circle(image, (60 + 20 * i, 40), 20, (110, 60, 150), -1)
        boxes.append((40 + 20 * i, 20, 81 + 20 * i, 61))
        labels.append("wbc")
        path = root / "JPEGImages" / f"img{i}.jpg"
        cv2.imwrite(str(path), image[..., ::-1])
        records.append(ImageRecord(str(path), 300, 120, Domain(source="bccd"), np.array(boxes, float), labels,
                                   source_labels=["RBC" if t == "rbc" else "WBC" for t in labels]))
    save_voc(records, root / "Annotations")
    (root / "ImageSets" / "Main" / "train.txt").write_text("img0\nimg1\nimg2\nimg3\n")
    (root / "ImageSets" / "Main" / "val.txt").write_text("img4\nimg5\n")


def write_yolo(root: Path) -> None:
    """A YOLO folder with classes.txt: 3 train and 2 val fields of one WBC."""
    for split, count in (("train", 3), ("val", 2)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(count):
            image = np.full((100, 100, 3), (236, 200, 214), dtype=np.uint8)
            cv2.circle(image, (50, 50), 15, (110, 60, 150), -1)
            cv2.imwrite(str(root / "images" / split / f"{split}{i}.png"), image[..., ::-1])
            (root / "labels" / split / f"{split}{i}.txt").write_text("0 0.5 0.5 0.3 0.3\n")
    (root / "classes.txt").write_text("WBC\nRBC\nPlatelets\n")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_voc(root / "voc")
    write_yolo(root / "yolo")
    return root


def test_sources_are_read_with_their_roles_and_scales(data_root, tmp_path):
    config = load_detector_config(None, [
        f"data_root={data_root}",
        "sources={voc: {format: voc, path: voc}, yolo: {format: yolo, path: yolo, taxonomy_source: txl, "
        "um_per_px: 0.1, repeat: 2}, off: {format: voc, path: nowhere, enabled: false}}",
    ])
    data = collect_training_data(config, tmp_path / "work")
    parts = {(p.name, p.role): p for p in data.parts}
    assert set(parts) == {("voc", "train"), ("voc", "val"), ("yolo", "train"), ("yolo", "val")}
    assert len(parts["voc", "train"].records) == 4 and len(parts["voc", "val"].records) == 2
    assert parts["yolo", "train"].repeat == 2 and parts["yolo", "val"].repeat == 1
    assert parts["voc", "val"].um_per_px == pytest.approx([7.5 / 20] * 2)  # measured on the train RBC boxes
    assert parts["yolo", "train"].um_per_px == [0.1] * 3
    assert {r.domain.source for r in parts["yolo", "val"].records} == {"yolo"}
    assert {r.domain.split for r in parts["voc", "train"].records} == {"train"}
    voc_scale = data.spec["voc"]["train"]["scale"]
    assert list(voc_scale["methods"]) == ["estimated: median of 48 RBC boxes 20.0 px = 7.5 um"]
    assert data.spec["yolo"]["val"]["scale"]["methods"] == {"um_per_px given": 2}
    assert data.issues == []


def test_an_evaluation_only_source_and_magnification_presets(data_root, tmp_path):
    config = load_detector_config(None, [
        f"data_root={data_root}",
        "sources={voc: {format: voc, path: voc, magnification: 100X, camera: C2}, "
        "yolo: {format: yolo, path: yolo, taxonomy_source: txl, splits: {val: val}, magnification: 40X}}",
    ])
    data = collect_training_data(config, tmp_path / "work")
    assert [(p.name, p.role) for p in data.parts] == [("voc", "train"), ("voc", "val"), ("yolo", "val")]
    assert data.parts[0].um_per_px[0] == pytest.approx(0.125 * 1.15)
    assert data.parts[2].um_per_px == [0.3125, 0.3125]


@pytest.mark.parametrize("overrides, message", [
    (["sources={v: {format: voc, path: missing}}"], "sources.v.path: .*missing not found"),
    (["sources={v: {format: voc, path: voc, enabled: false}}"], "sources: no source is enabled"),
    (["sources={y: {format: yolo, path: yolo, taxonomy_source: txl, splits: {val: val}, um_per_px: 0.1}}"],
     "no training images found"),
    (["sources={v: {format: voc, path: voc, splits: {train: nosuchsplit}}}"], "nosuchsplit.txt: split file not found"),
    (["sources={y: {format: yolo, path: yolo, taxonomy_source: txl, magnification: 7X}}"], "unknown magnification '7X'"),
])
def test_configuration_mistakes_are_reported(data_root, tmp_path, overrides, message):
    config = load_detector_config(None, [f"data_root={data_root}", *overrides])
    with pytest.raises(ValueError, match=message):
        collect_training_data(config, tmp_path / "work")


@pytest.mark.slow
def test_a_phantom_source_is_generated_once_and_scaled_by_its_domain_presets(tmp_path):
    config = load_detector_config(None, [
        "sources={ph: {format: leukemiaattri, generate: phantom, generate_fields: 2, domains: [H_40X_C2], "
        "splits: {train: train, val: test}}}",
    ])
    data = collect_training_data(config, tmp_path)
    manifest = tmp_path / "ph" / "phantom_manifest.json"
    stamp = manifest.stat().st_mtime_ns
    records = [r for p in data.parts for r in p.records]
    assert records and {r.domain.name for r in records} == {"H_40X_C2"}
    assert all(s == pytest.approx(0.3125 * 1.15) for p in data.parts for s in p.um_per_px)
    collect_training_data(config, tmp_path)
    assert manifest.stat().st_mtime_ns == stamp
    other = load_detector_config(None, [
        "sources={ph: {format: leukemiaattri, generate: phantom, generate_fields: 2, domains: [H_40X_C2], "
        "generate_size: 96, splits: {train: train, val: test}}}",
    ])
    with pytest.raises(ValueError, match=r"phantom_manifest.json: phantom fields were drawn with other settings.*size=640"):
        collect_training_data(other, tmp_path)


def test_a_phantom_source_draws_fields_of_its_generate_size(tmp_path):
    from smearscope.datasets.io import read_image

    config = load_detector_config(None, [
        "sources={ph: {format: leukemiaattri, generate: phantom, generate_fields: 1, domains: [L_10X_C1], "
        "generate_size: 96, splits: {train: train, val: test}}}",
    ])
    data = collect_training_data(config, tmp_path)
    records = [r for p in data.parts for r in p.records]
    assert records and all((r.width, r.height) == (96, 96) for r in records)
    assert all(read_image(r.path).shape[:2] == (96, 96) for r in records)
