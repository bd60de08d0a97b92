"""Every data set smearscope can read, by name: one call from a source name and a path to records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from smearscope.datasets.records import SPLITS, LoadResult

# name -> what PATH is
SOURCES: dict[str, str] = {
    "leukemiaattri": "LeukemiaAttri_Dataset/ or its parent (domain folders H_100X_C1, ...)",
    "bccd": "BCCD in Pascal VOC layout (Annotations/, JPEGImages/, ImageSets/Main/)",
    "txl": "TXL-PBC in YOLO layout (images/<split>/, labels/<split>/, classes.txt)",
    "wbcatt": "WBCAtt folder (pbc_attr_v1_<split>.csv, images/)",
    "coco": "a COCO JSON file (images resolve against its folder)",
    "yolo": "a YOLO folder (images/, labels/, classes.txt or data.yaml)",
    "voc": "a Pascal VOC folder (Annotations/, JPEGImages/)",
    "openmedlab_leukemia": "OpenMedLab Leukemia/ (image/, train.txt, val.txt, test.txt) or its parent",
    "all_aria": "ALL (Aria) folder with Original/ and Segmented/ class folders",
    "pbc": "PBC_dataset_normal_DIB/ or its parent",
    "aml_lmu": "AML-Cytomorphology_LMU (annotations.dat, AML-Cytomorphology/<CODE>/)",
    "cnmc": "C-NMC_Leukemia/ (training_data/, validation_data/) or its parent",
    "raabin": "Raabin-WBC: Train/TestA/TestB class folders and/or original smears with one JSON each",
    "cellavision": "folder with 'Class Labels of Dataset 2.csv' and 'Dataset 2/'",
}
WITHOUT_SPLITS = ("all_aria", "pbc", "aml_lmu", "cellavision")


def _formats(fmt: str, **options) -> Callable[[Path, str | None], LoadResult]:
    def load(path: Path, split: str | None) -> LoadResult:
        from smearscope.datasets.formats.convert import ReadOptions, load_folder

        return load_folder(fmt, path, ReadOptions(**options))
    return load


def _wbcatt(path: Path, split: str | None) -> LoadResult:
    from smearscope.datasets.sources.wbcatt import load_wbcatt, wbcatt_csv_path

    splits = [split] if split else [s for s in SPLITS if wbcatt_csv_path(path, s).is_file()]
    if not splits:
        raise ValueError(f"{path}: no pbc_attr_v1_<split>.csv found")
    result = LoadResult()
    for name in splits:
        result.extend(load_wbcatt(path, name))
    return result


def _loader(source: str, split: str | None) -> Callable[[Path, str | None], LoadResult]:
    from smearscope.datasets.sources import all_aria, aml_lmu, cellavision, cnmc, openmedlab_leukemia, pbc, raabin

    splits = [split] if split else None
    table: dict[str, Callable[[Path, str | None], LoadResult]] = {
        "leukemiaattri": _formats("leukemiaattri", splits=splits),
        "bccd": _formats("voc", source="bccd", split=split),
        "txl": _formats("yolo", source="txl"),
        "wbcatt": _wbcatt,
        "coco": _formats("coco"),
        "yolo": _formats("yolo"),
        "voc": _formats("voc", split=split),
        "openmedlab_leukemia": lambda p, s: openmedlab_leukemia.load_openmedlab_leukemia(p, splits),
        "all_aria": lambda p, s: all_aria.load_all_aria(p),
        "pbc": lambda p, s: pbc.load_pbc(p),
        "aml_lmu": lambda p, s: aml_lmu.load_aml_lmu(p),
        "cnmc": lambda p, s: cnmc.load_cnmc(p, splits),
        "raabin": lambda p, s: raabin.load_raabin(p),
        "cellavision": lambda p, s: cellavision.load_cellavision(p),
    }
    return table[source]


def load_source(source: str, path: str | Path, split: str | None = None) -> LoadResult:
    """Read data set ``source`` (one of ``SOURCES``) at ``path``; with ``split``, only the
    images of that split. ``ValueError`` for an unknown source, or a split the set lacks."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if split is not None and source in WITHOUT_SPLITS:
        raise ValueError(f"{source} has no train/val/test split; leave out --split")
    path = Path(path).expanduser()
    if not path.exists():
        raise ValueError(f"{path}: not found")
    result = _loader(source, split)(path, split)
    if split is not None:
        result.records = [r for r in result.records if r.domain.split == split]
    return result
