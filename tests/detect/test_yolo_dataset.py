"""Records -> ultralytics dataset: scale, tiles, labels, classes, subsets, copies, issues."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from smearscope.datasets.records import Domain, ImageRecord
from smearscope.detect.annotation_scale import estimate_um_per_px_from_boxes
from smearscope.detect.yolo_dataset import (
    PAD_VALUE,
    PreparedDataset,
    SourceRecords,
    build_yolo_dataset,
    class_table,
)

PINK = (236, 200, 214)
PURPLE = (110, 60, 150)
RED = (210, 120, 130)


def field_record(folder: Path, name: str, size: tuple[int, int], cells: list[tuple[int, int, int, str]],
                 domain: Domain | None = None) -> ImageRecord:
    """A PNG of discs (cx, cy, r, type) on pink, and its record with exact disc boxes."""
    width, height = size
    image = np.full((height, width, 3), PINK, dtype=np.uint8)
    for cx, cy, r, cell_type in cells:
        cv2.circle(image, (cx, cy), r, PURPLE if cell_type != "rbc" else RED, -1)
    path = folder / f"{name}.png"
    cv2.imwrite(str(path), image[..., ::-1])
    boxes = [(cx - r, cy - r, cx + r + 1, cy + r + 1) for cx, cy, r, _ in cells]
    return ImageRecord(str(path), width, height, domain or Domain(source="synthetic"),
                       np.array(boxes, dtype=float).reshape(-1, 4), [c[3] for c in cells])


def labels_of(root: Path, role: str, stem: str) -> np.ndarray:
    text = (root / "labels" / role / f"{stem}.txt").read_text()
    return np.array([[float(v) for v in line.split()] for line in text.splitlines()]).reshape(-1, 5)


def test_images_are_resampled_to_the_training_scale_and_padded_to_square_tiles(tmp_path):
    record = field_record(tmp_path, "a", (200, 120), [(50, 60, 20, "lymphocyte"), (150, 40, 10, "rbc")])
    part = SourceRecords("src", "train", [record], [0.15])  # half the training um/px: shrinks 2x
    prepared = build_yolo_dataset([part], tmp_path / "ds", imgsz=128, um_per_px=0.3)
    tile = cv2.imread(str(prepared.root / "images" / "train" / "src-00000-a.png"))
    assert tile.shape == (128, 128, 3)
    assert np.all(tile[60:, :, :] == PAD_VALUE) and np.all(tile[:, 100:, :] == PAD_VALUE)
    labels = labels_of(prepared.root, "train", "src-00000-a")
    assert labels.shape == (1, 5)  # the RBC is dropped
    cls, xc, yc, w, h = labels[0]
    assert cls == 0
    assert xc * 128 == pytest.approx(25.25, abs=0.01) and yc * 128 == pytest.approx(30.25, abs=0.01)
    assert w * 128 == pytest.approx(20.5, abs=0.01) and h * 128 == pytest.approx(20.5, abs=0.01)
    assert prepared.counts["train/src"] == {"images": 1, "tiles": 1, "boxes": 1}


def test_large_images_become_overlapping_tiles_keeping_mostly_visible_boxes(tmp_path):
    record = field_record(tmp_path, "big", (300, 128), [(60, 64, 15, "neutrophil"), (150, 64, 15, "monocyte")])
    part = SourceRecords("src", "val", [record], [0.3])
    prepared = build_yolo_dataset([part], tmp_path / "ds", imgsz=128, um_per_px=0.3)
    names = sorted(p.stem for p in (prepared.root / "images" / "val").iterdir())
    assert names == ["src-00000-big-t0", "src-00000-big-t1", "src-00000-big-t2"]  # starts 0, 103, 172
    per_tile = {n: labels_of(prepared.root, "val", n) for n in names}
    assert len(per_tile["src-00000-big-t0"]) == 1  # x 45..76 inside; 135..166 is 25 % inside: dropped
    assert len(per_tile["src-00000-big-t1"]) == 1  # 45..76 is 0 % inside 103..231; 135..166 fully
    assert per_tile["src-00000-big-t1"][0, 1] * 128 == pytest.approx(150.5 - 103, abs=0.01)
    assert len(per_tile["src-00000-big-t2"]) == 0  # 135..166 is 0 % inside 172..300


def test_artifact_class_mode_keeps_artifacts_and_drops_rbcs(tmp_path):
    cells = [(30, 30, 10, "blast"), (80, 80, 10, "artifact"), (100, 30, 8, "rbc"), (30, 100, 8, "smudge_cell")]
    record = field_record(tmp_path, "a", (128, 128), cells)
    wbc_only = build_yolo_dataset([SourceRecords("s", "train", [record], [0.3])], tmp_path / "one",
                                  imgsz=128, um_per_px=0.3)
    both = build_yolo_dataset([SourceRecords("s", "train", [record], [0.3])], tmp_path / "two",
                              imgsz=128, um_per_px=0.3, class_mode="wbc+artifact")
    assert labels_of(wbc_only.root, "train", "s-00000-a")[:, 0].tolist() == [0]
    assert labels_of(both.root, "train", "s-00000-a")[:, 0].tolist() == [0, 1, 1]
    assert yaml.safe_load(both.data_yaml.read_text())["names"] == {0: "wbc", 1: "artifact"}
    with pytest.raises(ValueError, match="is a WBC type"):
        class_table("wbc+artifact", ["lymphocyte"])


def test_square_images_at_the_right_scale_are_linked_not_copied(tmp_path):
    record = field_record(tmp_path, "sq", (128, 128), [(64, 64, 12, "eosinophil")])
    prepared = build_yolo_dataset([SourceRecords("s", "train", [record], [0.3])], tmp_path / "ds",
                                  imgsz=128, um_per_px=0.3)
    tile = prepared.root / "images" / "train" / "s-00000-sq.png"
    assert tile.is_symlink() and tile.resolve() == Path(record.path).resolve()


def test_repeat_and_blur_copies_share_labels_and_validation_has_per_source_and_domain_subsets(tmp_path):
    domain_a = Domain(source="lab", microscope="H", magnification="40X", camera="C1")
    domain_b = Domain(source="lab", microscope="L", magnification="40X", camera="C2")
    train = [field_record(tmp_path, f"t{i}", (128, 128), [(40 + i, 50, 12, "lymphocyte")]) for i in range(4)]
    val = [field_record(tmp_path, "va", (128, 128), [(60, 60, 12, "monocyte")], domain_a),
           field_record(tmp_path, "vb", (128, 128), [(70, 60, 12, "monocyte")], domain_b)]
    other = [field_record(tmp_path, "o", (128, 128), [(30, 30, 12, "basophil")])]
    parts = [SourceRecords("lab", "train", train, [0.3] * 4, repeat=3),
             SourceRecords("lab", "val", val, [0.3, 0.3]),
             SourceRecords("other", "val", other, [0.3])]
    prepared = build_yolo_dataset(parts, tmp_path / "ds", imgsz=128, um_per_px=0.3, blur=1.0, seed=1)
    train_dir = prepared.root / "images" / "train"
    assert len(list(train_dir.iterdir())) == 4 * 2 * 3  # each tile + its blurred copy, three times
    blurred = cv2.imread(str(train_dir / "lab-00000-t0-blur.png"))
    sharp = cv2.imread(str(train_dir / "lab-00000-t0.png"))
    assert blurred.shape == sharp.shape and not np.array_equal(blurred, sharp)
    assert all(path.exists() for path in train_dir.iterdir())  # links resolve after the folder moved
    first = labels_of(prepared.root, "train", "lab-00000-t0")
    copies = [p.stem for p in train_dir.iterdir() if p.stem.startswith("lab-00000-t0")]
    assert sorted(copies) == ["lab-00000-t0", "lab-00000-t0-blur", "lab-00000-t0-blur-r1", "lab-00000-t0-blur-r2",
                              "lab-00000-t0-r1", "lab-00000-t0-r2"]
    assert all(np.array_equal(labels_of(prepared.root, "train", c), first) for c in copies)
    assert set(prepared.subsets) == {"all", "source:lab", "source:other", "domain:H_40X_C1", "domain:L_40X_C2",
                                     "domain:synthetic"}
    members = {k: Path(v).read_text() for k, v in prepared.subsets.items()}
    listed = yaml.safe_load(members["domain:H_40X_C1"])["val"]
    assert Path(listed).read_text().split() == [str(prepared.root / "images" / "val" / "lab-00000-va.png")]
    assert len(Path(yaml.safe_load(members["all"])["val"]).read_text().split()) == 3
    selection = Path(yaml.safe_load(prepared.data_yaml.read_text())["val"]).read_text().split()
    assert [Path(p).name for p in selection] == ["lab-00000-va.png", "lab-00001-vb.png"]  # never the unseen source
    assert prepared.counts["train/lab"]["tiles"] == 24 and prepared.counts["val/other"]["tiles"] == 1
    assert PreparedDataset.load(prepared.root) == prepared


def test_unreadable_or_mismatched_images_are_reported_and_skipped(tmp_path):
    good = field_record(tmp_path, "good", (128, 128), [(64, 64, 12, "lymphocyte")])
    broken = field_record(tmp_path, "broken", (128, 128), [(64, 64, 12, "lymphocyte")])
    Path(broken.path).write_bytes(b"not a png")
    wrong = field_record(tmp_path, "wrong", (128, 128), [(64, 64, 12, "lymphocyte")])
    wrong.width = 140
    prepared = build_yolo_dataset([SourceRecords("s", "train", [good, broken, wrong], [0.3] * 3)],
                                  tmp_path / "ds", imgsz=128, um_per_px=0.3)
    reasons = {Path(i.path).name: i.reason for i in prepared.issues}
    assert set(reasons) == {"broken.png", "wrong.png"}
    assert "not a readable image" in reasons["broken.png"] and "annotation says 140x128" in reasons["wrong.png"]
    assert [p.name for p in (prepared.root / "images" / "train").iterdir()] == ["s-00000-good.png"]


def test_an_existing_folder_that_is_not_a_dataset_is_never_replaced(tmp_path):
    record = field_record(tmp_path, "a", (128, 128), [(64, 64, 12, "lymphocyte")])
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="is not a smearscope dataset folder"):
        build_yolo_dataset([SourceRecords("s", "train", [record], [0.3])], precious, imgsz=128, um_per_px=0.3)
    assert (precious / "notes.txt").read_text() == "keep"
    first = build_yolo_dataset([SourceRecords("s", "train", [record], [0.3])], tmp_path / "ds", imgsz=128, um_per_px=0.3)
    again = build_yolo_dataset([SourceRecords("s", "val", [record], [0.3])], tmp_path / "ds", imgsz=128, um_per_px=0.3)
    assert first.root == again.root and not any((again.root / "images" / "train").iterdir())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ds.")]


def test_scale_is_estimated_from_rbc_boxes_else_wbc_boxes(tmp_path):
    rbcs = [(20 + 25 * i, 60, 9, "rbc") for i in range(10)]  # 19 px wide boxes -> 7.5 / 19 um/px
    record = field_record(tmp_path, "r", (300, 128), rbcs + [(150, 20, 15, "lymphocyte")])
    value, how = estimate_um_per_px_from_boxes([record])
    assert value == pytest.approx(7.5 / 19) and "10 RBC boxes" in how
    wbcs = [field_record(tmp_path, f"w{i}", (128, 128), [(64, 64, 14, "neutrophil")]) for i in range(10)]
    value, how = estimate_um_per_px_from_boxes(wbcs)
    assert value == pytest.approx(12.0 / 29) and "WBC boxes" in how
    touching = [field_record(tmp_path, f"e{i}", (128, 128), [(12, 64, 12, "rbc")]) for i in range(12)]
    assert estimate_um_per_px_from_boxes(touching) is None  # boxes on the border measure nothing
