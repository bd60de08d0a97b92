"""The labelled cells a training run uses: every configured source, cropped and cached once.

Sources: a WBCAtt-layout folder (type + 11 attributes), a LeukemiaAttri-layout folder
(14 classes + 7 attributes; train split for training, test split for validation),
synthetic phantom cells (LeukemiaAttri classes and attributes, several optics domains),
and optionally BCCD cells with a known type.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from smearscope.attributes.cellset import (
    CellSet,
    CropSpec,
    build_cell_set,
    cached_cell_set,
    concat_cell_sets,
    load_cell_set,
    save_cell_set,
)
from smearscope.attributes.schema import attribute_heads
from smearscope.attributes.train_config import DataSection, ModelSection
from smearscope.datasets.records import LoadIssue


def cache_spec(model: ModelSection, data: DataSection) -> CropSpec:
    """Crops stored ``cache_margin`` times larger than the input, at the input's um per pixel."""
    size = int(round(model.input_size * data.cache_margin))
    ratio = size / model.input_size
    return CropSpec(size, model.crop_um * ratio, model.fallback_box_scale * ratio, dict(data.um_per_px))


def phantom_cell_set(
    count: int,
    seed: int,
    domains: Sequence[str],
    heads: Mapping[str, Sequence[str]],
    spec: CropSpec,
    types: Sequence[str] = (),
) -> tuple[CellSet, list[LoadIssue]]:
    """``count`` synthetic single cells over ``domains``, of ``types`` in turn (default: the
    14 LeukemiaAttri classes)."""
    from smearscope.datasets.phantom.domains import domain_spec
    from smearscope.datasets.phantom.field import render_field
    from smearscope.datasets.phantom.slide import leukemiaattri_types, single_cell_slide

    if not domains:
        raise ValueError("phantom cells need at least one domain (e.g. H_100X_C1)")
    known = leukemiaattri_types()
    unknown = [t for t in types if t not in known]
    if unknown:
        raise ValueError(f"phantom_types: {', '.join(unknown)} not drawn by the phantom; known: {', '.join(known)}")
    types = tuple(types) or known
    specs = [domain_spec(d) for d in domains]
    images, records = [], []
    for i in range(count):
        domain = specs[i % len(specs)]
        slide = single_cell_slide(seed * 1_000_003 + i, types[i % len(types)])
        size = int(math.ceil(spec.crop_um / domain.um_per_px)) + 4
        image, record = render_field(slide, domain.name, size=size, path=f"phantom/{seed}/{i}_{domain.name}.png")
        images.append(image)
        records.append(record)
    return build_cell_set(records, heads, spec, images=images)


def _cached_phantom(count: int, seed: int, domains: Sequence[str], heads, spec: CropSpec, cache_dir: Path, name: str,
                    types: Sequence[str] = ()):
    described = [count, seed, list(domains), {k: list(v) for k, v in heads.items()}, spec.__dict__]
    if types:  # runs drawing every class keep their earlier cache key
        described.append(list(types))
    key = hashlib.sha1(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / f"{name}-{key}.pt"
    if path.is_file():
        return load_cell_set(path), []
    cell_set, issues = phantom_cell_set(count, seed, domains, heads, spec, types)
    save_cell_set(cell_set, path)
    return cell_set, issues


def training_sets(
    data: DataSection,
    model: ModelSection,
    heads: Mapping[str, Sequence[str]],
    cache_dir: str | Path,
    threads: int = 2,
) -> tuple[CellSet, dict[str, CellSet], list[LoadIssue]]:
    """(training cells, validation cells by name, issues) for the configured sources."""
    from smearscope.datasets.sources.bccd_types import load_bccd_types
    from smearscope.datasets.sources.wbcatt import load_wbcatt

    cache_dir = Path(cache_dir)
    spec = cache_spec(model, data)
    train: list[CellSet] = []
    val: dict[str, CellSet] = {}
    issues: list[LoadIssue] = []

    def add(result, name: str, into: list | dict) -> None:
        cells, problems = cached_cell_set(result.records, heads, spec, cache_dir, name, threads)
        issues.extend(result.issues)
        issues.extend(problems)
        if isinstance(into, dict):
            into[name] = cells
        else:
            into.append(cells)

    if data.wbcatt_root:
        scale = data.um_per_px.get("wbcatt")
        add(load_wbcatt(data.wbcatt_root, "train", data.wbcatt_train_csv, scale), "wbcatt-train", train)
        if data.wbcatt_val_csv:
            add(load_wbcatt(data.wbcatt_root, "val", data.wbcatt_val_csv, scale), "wbcatt-val", val)
    if data.leukemiaattri_root:
        from smearscope.datasets.formats.leukemiaattri import load_leukemiaattri

        domains = data.leukemiaattri_domains or None
        add(load_leukemiaattri(data.leukemiaattri_root, domains, ["train"]), "leukemiaattri-train", train)
        add(load_leukemiaattri(data.leukemiaattri_root, domains, ["test"]), "leukemiaattri-test", val)
    if data.phantom_cells > 0:
        cells, problems = _cached_phantom(
            data.phantom_cells, data.phantom_seed, data.phantom_domains, heads, spec, cache_dir, "phantom-train",
            data.phantom_types)
        train.append(cells)
        issues.extend(problems)
    if data.phantom_val_cells > 0:
        cells, problems = _cached_phantom(
            data.phantom_val_cells, data.phantom_seed + 7919, data.phantom_domains, heads, spec, cache_dir, "phantom-val",
            data.phantom_types)
        val["phantom-val"] = cells
        issues.extend(problems)
    if data.bccd_root:
        add(load_bccd_types(data.bccd_root, um_per_px=data.um_per_px.get("bccd")), "bccd", train)
    train = [c for c in train if len(c)]
    if not train:
        raise ValueError(
            "no training cells: set data.wbcatt_root, data.leukemiaattri_root, data.phantom_cells or data.bccd_root")
    return concat_cell_sets(train), {k: v for k, v in val.items() if len(v)}, issues


def label_counts(cells: CellSet) -> dict[str, np.ndarray]:
    """Per attribute head, how many training cells carry each value."""
    targets = cells.attribute_targets.numpy()
    heads = attribute_heads(cells.heads)
    return {h: np.bincount(targets[:, j][targets[:, j] >= 0], minlength=len(cells.heads[h])) for j, h in enumerate(heads)}
