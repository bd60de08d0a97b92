"""Turn ``ImageRecord``s into an ultralytics detection dataset at one physical scale.

Every image is resampled from its own um/px to the training um/px, then cut into
``imgsz`` x ``imgsz`` tiles (``detect.tiling.tile_boxes``, 20 % overlap) and tiles smaller
than that are padded bottom-right with grey 114, as ultralytics pads. Ultralytics resizes
every image whose long side differs from ``imgsz``; feeding it exactly ``imgsz``-square
tiles is what keeps cells at the training scale, the same scale inference uses. Images
that already are ``imgsz``-square at the right scale are symlinked, all others written as
PNG. A box enters a tile when at least half of its area lies inside.

Classes: WBC types (``taxonomy().is_wbc``) become class 0 ``wbc``; in ``wbc+artifact`` mode
the ``artifact_types`` become class 1 ``artifact``; every other box (RBC, platelet, ...)
is dropped. Validation tiles are also listed per source and per domain, each with its own
data YAML, so AP50 can be reported for each. The main ``data.yaml`` validates (and so
picks ``best.pt``) only on the validation tiles of sources that are also trained on: a
source used only for validation never influences the model it scores.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from smearscope.datasets.io import read_image, read_json, write_json_atomic, write_text_atomic
from smearscope.datasets.records import ImageRecord, LoadIssue
from smearscope.datasets.schema import taxonomy
from smearscope.detect.tiling import tile_boxes

TILE_OVERLAP = 0.2
MIN_VISIBLE = 0.5
PAD_VALUE = 114
BLUR_SIGMA_PX = (0.6, 2.0)
SCALE_TOLERANCE = 0.01
LINKABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MANIFEST = "manifest.json"
LAYOUT_VERSION = 2  # part of every dataset key: a folder written by other code is rebuilt


@dataclass
class SourceRecords:
    """Records of one source in one role, with each record's um/px."""

    name: str
    role: str
    records: list[ImageRecord]
    um_per_px: list[float]
    repeat: int = 1

    def __post_init__(self) -> None:
        if self.role not in ("train", "val"):
            raise ValueError(f"{self.name}: role must be train or val, got {self.role!r}")
        if len(self.um_per_px) != len(self.records):
            raise ValueError(f"{self.name}: {len(self.um_per_px)} scales for {len(self.records)} records")
        if any(not np.isfinite(s) or s <= 0 for s in self.um_per_px):
            raise ValueError(f"{self.name}: every um_per_px must be a positive number")


@dataclass
class PreparedDataset:
    """An ultralytics dataset folder: the main data YAML and one per validation subset."""

    root: Path
    data_yaml: Path
    class_names: list[str]
    imgsz: int
    um_per_px: float
    subsets: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    issues: list[LoadIssue] = field(default_factory=list)
    key: str = ""

    def to_json(self) -> dict:
        """Plain data for ``manifest.json``."""
        data = asdict(self)
        data["root"], data["data_yaml"] = str(self.root), str(self.data_yaml)
        return data

    @classmethod
    def load(cls, root: str | Path) -> "PreparedDataset":
        """Read a dataset folder's ``manifest.json``."""
        data = read_json(Path(root) / MANIFEST)
        data["root"], data["data_yaml"] = Path(data["root"]), Path(data["data_yaml"])
        data["issues"] = [LoadIssue(**i) for i in data.get("issues", [])]
        return cls(**data)


def class_table(class_mode: str, artifact_types: list[str] | tuple[str, ...] = ("artifact", "smudge_cell")) -> dict[str, int]:
    """Unified cell type -> detector class id; types not in the table are dropped."""
    tax = taxonomy()
    table = {t: 0 for t in tax.types if tax.is_wbc[t]}
    if class_mode == "wbc+artifact":
        for t in artifact_types:
            if t not in tax.types:
                raise ValueError(f"artifact_types: unknown cell type {t!r}")
            if tax.is_wbc[t]:
                raise ValueError(f"artifact_types: {t!r} is a WBC type")
            table[t] = 1
    elif class_mode != "wbc":
        raise ValueError(f"class_mode: {class_mode!r} is not one of wbc, wbc+artifact")
    return table


def rescale(image: np.ndarray, boxes_xyxy: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Resize ``image`` by ``factor`` (area filter when shrinking) and its boxes with it."""
    import cv2

    if abs(factor - 1.0) <= SCALE_TOLERANCE:
        return image, boxes_xyxy
    height, width = image.shape[:2]
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    gain = np.array([new_w / width, new_h / height, new_w / width, new_h / height])
    return resized, boxes_xyxy * gain


def cut_tile(
    image: np.ndarray, boxes_xyxy: np.ndarray, classes: np.ndarray, window: np.ndarray, imgsz: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``window`` (xyxy) of ``image`` padded to ``imgsz`` square, with the boxes inside it."""
    x1, y1, x2, y2 = (int(v) for v in window)
    canvas = np.full((imgsz, imgsz, 3), PAD_VALUE, dtype=np.uint8)
    canvas[: y2 - y1, : x2 - x1] = image[y1:y2, x1:x2]
    if not len(boxes_xyxy):
        return canvas, np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
    clipped = boxes_xyxy.copy()
    clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], x1, x2) - x1
    clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], y1, y2) - y1
    area = (boxes_xyxy[:, 2] - boxes_xyxy[:, 0]) * (boxes_xyxy[:, 3] - boxes_xyxy[:, 1])
    inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = inside >= MIN_VISIBLE * area
    return canvas, clipped[keep], classes[keep]


def yolo_label_text(boxes_xyxy: np.ndarray, classes: np.ndarray, imgsz: int) -> str:
    """YOLO txt lines ``cls xc yc w h`` normalised to an ``imgsz`` square."""
    lines = []
    for (x1, y1, x2, y2), cls in zip(boxes_xyxy, classes):
        xc, yc, w, h = (x1 + x2) / 2 / imgsz, (y1 + y2) / 2 / imgsz, (x2 - x1) / imgsz, (y2 - y1) / imgsz
        lines.append(f"{int(cls)} {xc:.6f} {yc:.6f} {w:.6f} {h:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def slug(text: str) -> str:
    """A file-name-safe version of ``text``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


class _Writer:
    """Writes tiles, labels and the tile table into a dataset folder being built."""

    def __init__(self, root: Path, final_root: Path, imgsz: int, blur: float, seed: int) -> None:
        self.root, self.final_root, self.imgsz, self.blur = root, final_root, imgsz, blur
        self.rng = np.random.default_rng(seed)
        self.rows: list[list] = []
        self.val_members: dict[str, list[str]] = {}
        self.counts: dict[str, dict[str, int]] = {}

    def _count(self, role: str, source: str, key: str, amount: int = 1) -> None:
        entry = self.counts.setdefault(f"{role}/{source}", {"images": 0, "tiles": 0, "boxes": 0})
        entry[key] += amount

    def _save(self, role: str, name: str, image: np.ndarray | Path, labels: str) -> Path:
        import cv2

        image_path = self.root / "images" / role / f"{name}.png"
        if isinstance(image, Path):
            image_path = image_path.with_suffix(image.suffix.lower())
            os.symlink(image.resolve(), image_path)
        elif not cv2.imwrite(str(image_path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise ValueError(f"{image_path}: could not write tile")
        (self.root / "labels" / role / f"{name}.txt").write_text(labels, encoding="utf-8")
        return image_path

    def add(self, part: SourceRecords, index: int, record: ImageRecord, image: np.ndarray,
            boxes: np.ndarray, classes: np.ndarray, factor: float, linkable: bool) -> None:
        """Tile one resampled image and write every tile (and its copies) of it."""
        import cv2

        height, width = image.shape[:2]
        windows = tile_boxes(width, height, self.imgsz, int(self.imgsz * TILE_OVERLAP))
        stem = f"{slug(part.name)}-{index:05d}-{slug(Path(record.path).stem)}"
        self._count(part.role, part.name, "images")
        for k, window in enumerate(windows):
            tile, tile_xyxy, tile_classes = cut_tile(image, boxes, classes, window, self.imgsz)
            labels = yolo_label_text(tile_xyxy, tile_classes, self.imgsz)
            name = stem if len(windows) == 1 else f"{stem}-t{k}"
            source_image = Path(record.path) if linkable and len(windows) == 1 and width == height == self.imgsz else tile
            path = self._save(part.role, name, source_image, labels)
            copies = [path]
            if part.role == "train" and self.rng.random() < self.blur:
                sigma = float(self.rng.uniform(*BLUR_SIGMA_PX))
                copies.append(self._save(part.role, f"{name}-blur", cv2.GaussianBlur(tile, (0, 0), sigma), labels))
            if part.role == "train":
                originals = list(copies)
                for r in range(1, part.repeat):
                    for copy in originals:
                        twin = copy.with_name(f"{copy.stem}-r{r}{copy.suffix}")
                        os.symlink(os.readlink(copy) if copy.is_symlink() else copy.name, twin)
                        shutil.copyfile(self.root / "labels" / "train" / f"{copy.stem}.txt",
                                        self.root / "labels" / "train" / f"{twin.stem}.txt")
                        copies.append(twin)
            else:
                final = self.final_root / path.relative_to(self.root)
                keys = ["all", f"source:{part.name}"]
                if record.domain.name != part.name:
                    keys.append(f"domain:{record.domain.name}")
                for key in keys:
                    self.val_members.setdefault(key, []).append(str(final))
            self._count(part.role, part.name, "tiles", len(copies))
            self._count(part.role, part.name, "boxes", len(tile_xyxy) * len(copies))
            self.rows.append([path.name, part.role, part.name, record.domain.name, record.path,
                              f"{factor:.6f}", *[int(v) for v in window]])

    def tile_table(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["tile", "role", "source", "domain", "image", "scale_factor", "x1", "y1", "x2", "y2"])
        writer.writerows(self.rows)
        return out.getvalue()


def _data_yaml(path: Path, root: Path, train: str, val: str, class_names: list[str]) -> Path:
    data = {"path": str(root), "train": train, "val": val, "names": dict(enumerate(class_names))}
    return write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def build_yolo_dataset(
    parts: list[SourceRecords],
    out_dir: str | Path,
    *,
    imgsz: int,
    um_per_px: float,
    class_mode: str = "wbc",
    artifact_types: list[str] | tuple[str, ...] = ("artifact", "smudge_cell"),
    blur: float = 0.0,
    seed: int = 0,
    key: str = "",
) -> PreparedDataset:
    """Write the dataset for ``parts`` into ``out_dir`` (replaced only if it is a dataset).

    Unreadable images become issues and are skipped; the folder appears complete or not
    at all (it is built beside ``out_dir`` and renamed). ``key`` is stored in the manifest
    so that callers can tell whether an existing folder was built from the same inputs.
    """
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not (out_dir / MANIFEST).is_file():
        raise ValueError(f"{out_dir}: exists and is not a smearscope dataset folder; choose another")
    table = class_table(class_mode, artifact_types)
    class_names = ["wbc", "artifact"] if class_mode == "wbc+artifact" else ["wbc"]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for role in ("train", "val"):
            (build / "images" / role).mkdir(parents=True)
            (build / "labels" / role).mkdir(parents=True)
        writer = _Writer(build, out_dir, imgsz, blur, seed)
        issues: list[LoadIssue] = []
        for part in parts:
            for index, (record, scale) in enumerate(zip(part.records, part.um_per_px)):
                try:
                    image = read_image(record.path)
                except ValueError as exc:
                    issues.append(LoadIssue(record.path, str(exc)))
                    continue
                if image.shape[:2] != (record.height, record.width):
                    issues.append(LoadIssue(record.path, f"image is {image.shape[1]}x{image.shape[0]}, "
                                                         f"annotation says {record.width}x{record.height}"))
                    continue
                ids = [table.get(t) for t in record.cell_types]
                keep = np.array([i is not None for i in ids], dtype=bool)
                classes = np.array([i for i in ids if i is not None], dtype=np.int64)
                factor = scale / um_per_px
                resized, boxes = rescale(image, record.boxes_xyxy[keep], factor)
                linkable = resized is image and Path(record.path).suffix.lower() in LINKABLE_SUFFIXES
                writer.add(part, index, record, resized, boxes, classes, factor, linkable)
        subsets: dict[str, str] = {}
        (build / "subsets").mkdir()
        for subset, members in sorted(writer.val_members.items()):
            name = slug(subset.replace(":", "-"))
            write_text_atomic(build / "subsets" / f"{name}.txt", "\n".join(members) + "\n")
            subsets[subset] = str(out_dir / f"data-{name}.yaml")
        write_text_atomic(build / "tiles.csv", writer.tile_table())
        has_train = any(k.startswith("train/") and v["tiles"] for k, v in writer.counts.items())
        train_ref = str(out_dir / "images" / "train") if has_train else str(out_dir / "subsets" / "all.txt")
        trained = sorted({p.name for p in parts if p.role == "train" and p.records})
        selection = [m for name in trained for m in writer.val_members.get(f"source:{name}", [])]
        if selection:
            write_text_atomic(build / "subsets" / "selection.txt", "\n".join(selection) + "\n")
            val_ref = str(out_dir / "subsets" / "selection.txt")
        else:
            val_ref = train_ref if has_train else str(out_dir / "subsets" / "all.txt")
        data_yaml = _data_yaml(build / "data.yaml", out_dir, train_ref, val_ref, class_names)
        for subset, path in subsets.items():
            members = f"subsets/{slug(subset.replace(':', '-'))}.txt"
            _data_yaml(build / Path(path).name, out_dir, train_ref, str(out_dir / members), class_names)
        prepared = PreparedDataset(out_dir, out_dir / data_yaml.name, class_names, imgsz, um_per_px,
                                   subsets, writer.counts, issues, key)
        write_json_atomic(build / MANIFEST, prepared.to_json())
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(build, out_dir)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return prepared

