"""Read every configured source into ``SourceRecords`` with a um/px for each record.

Each source's format module reads it (``smearscope.datasets.formats``); its scale is
decided per record, first match wins: the source's ``um_per_px``; its ``magnification``
(+ ``camera``) preset; the record's ``domain.um_per_px``; the record's own
``domain.magnification`` (+ ``domain.camera``) preset; otherwise the scale measured from
the source's annotated boxes (``detect.annotation_scale``). How each scale was decided
is written into the data spec saved beside the weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from smearscope.datasets.records import Domain, ImageRecord, LoadIssue, LoadResult
from smearscope.detect.annotation_scale import estimate_um_per_px_from_boxes
from smearscope.detect.config import ROLES, DataSource, DetectorConfig
from smearscope.detect.scale import scale_from_preset
from smearscope.detect.yolo_dataset import SourceRecords

LOG = logging.getLogger("smearscope.detect")


@dataclass
class TrainingData:
    """The records of every source and role, what went wrong, and a summary per source."""

    parts: list[SourceRecords] = field(default_factory=list)
    issues: list[LoadIssue] = field(default_factory=list)
    spec: dict[str, dict] = field(default_factory=dict)


def _read_split(spec: DataSource, name: str, root: Path, split: str) -> LoadResult:
    """One split of one source, through the reader of its format."""
    if spec.format == "voc":
        from smearscope.datasets.formats.voc import load_voc_split

        return load_voc_split(root, split, source=spec.taxonomy_source or "bccd")
    if spec.format == "yolo":
        from smearscope.datasets.formats.yolo import load_yolo, read_class_names

        names = spec.class_names or read_class_names(root / "classes.txt")
        return load_yolo(root / "images" / split, root / "labels" / split, names, spec.taxonomy_source or name)
    if spec.format == "leukemiaattri":
        from smearscope.datasets.formats.leukemiaattri import load_leukemiaattri

        return load_leukemiaattri(root, domains=spec.domains or None, splits=[split])
    from smearscope.datasets.formats.coco import load_coco

    json_path = root / (split if split.endswith(".json") else f"{split}.json")
    return load_coco(json_path, source=spec.taxonomy_source or "coco", domain=Domain(source=name, split=split))


def _generate(spec: DataSource, name: str, work_dir: Path, seed: int) -> Path:
    """Generate a synthetic source into ``work_dir/<name>`` once; return its folder."""
    from smearscope.datasets.io import read_json
    from smearscope.datasets.phantom import generate_leukemiaattri
    from smearscope.datasets.phantom.domains import parse_domains

    target = work_dir / name
    manifest = target / "phantom_manifest.json"
    wanted = {"seed": seed, "fields": spec.generate_fields, "size": spec.generate_size,
              "domains": [d.name for d in parse_domains(spec.domains or None)]}
    if manifest.is_file():
        drawn = read_json(manifest)
        if {key: drawn.get(key) for key in wanted} != wanted:
            raise ValueError(f"{manifest}: phantom fields were drawn with other settings "
                             f"({', '.join(f'{k}={drawn.get(k)}' for k in wanted)}); use a new work folder")
        return target
    LOG.info("drawing %d phantom fields of %d px into %s", spec.generate_fields, spec.generate_size, target)
    generate_leukemiaattri(target, spec.generate_fields, domains=spec.domains or None, seed=seed,
                           size=spec.generate_size)
    return target


def _record_scale(spec: DataSource, domain: Domain) -> tuple[float, str] | None:
    """The scale of one record from configuration or its own domain, if either gives one."""
    if spec.um_per_px is not None:
        return spec.um_per_px, "um_per_px given"
    if spec.magnification:
        return scale_from_preset(spec.magnification, spec.camera), f"preset {spec.magnification} {spec.camera or ''}".strip()
    if domain.um_per_px is not None:
        return domain.um_per_px, "record domain.um_per_px"
    if domain.magnification:
        return scale_from_preset(domain.magnification, domain.camera), "record magnification preset"
    return None


def resolve_scales(spec: DataSource, name: str, records: list[ImageRecord], reference: list[ImageRecord]) -> tuple[list[float], dict]:
    """um/px per record, and how they were decided; ``reference`` records feed estimation."""
    scales: list[float | None] = []
    how: dict[str, int] = {}
    for record in records:
        found = _record_scale(spec, record.domain)
        scales.append(None if found is None else found[0])
        if found is not None:
            how[found[1]] = how.get(found[1], 0) + 1
    missing = [i for i, s in enumerate(scales) if s is None]
    summary: dict = {"methods": how}
    if missing:
        estimate = estimate_um_per_px_from_boxes(reference)
        if estimate is None:
            raise ValueError(f"sources.{name}: scale unknown and too few annotated RBC or WBC boxes to "
                             "measure it; give um_per_px or magnification")
        for i in missing:
            scales[i] = estimate[0]
        how[f"estimated: {estimate[1]}"] = len(missing)
    values = [float(s) for s in scales]
    if values:
        summary["um_per_px_median"] = round(float(np.median(values)), 5)
    return values, summary


def collect_training_data(config: DetectorConfig, work_dir: str | Path, cwd: Path | None = None) -> TrainingData:
    """Read every enabled source's train and val splits; ``ValueError`` if nothing is left."""
    work_dir = Path(work_dir)
    data = TrainingData()
    sources = config.enabled_sources()
    if not sources:
        raise ValueError("sources: no source is enabled")
    for name, spec in sources.items():
        root = config.resolve_path(spec.path, cwd) if spec.path else _generate(spec, name, work_dir, config.seed)
        if not root.exists():
            raise ValueError(f"sources.{name}.path: {root} not found")
        per_role: dict[str, list[ImageRecord]] = {}
        for role in ROLES:
            split = spec.split(role)
            if not split:
                continue
            result = _read_split(spec, name, root, split)
            records = [r for r in result.records if not spec.domains or r.domain.name in spec.domains]
            per_role[role] = [_with_source(r, name, role) for r in records]
            data.issues.extend(result.issues)
        reference = per_role.get("train") or [r for rs in per_role.values() for r in rs]
        entry = {"format": spec.format, "path": str(root), "splits": dict(spec.splits), "repeat": spec.repeat}
        for role, records in per_role.items():
            scales, scale_summary = resolve_scales(spec, name, records, reference)
            data.parts.append(SourceRecords(name, role, records, scales, spec.repeat if role == "train" else 1))
            entry[role] = {"images": len(records), "domains": sorted({r.domain.name for r in records}), "scale": scale_summary}
        data.spec[name] = entry
    if not any(p.role == "train" and p.records for p in data.parts):
        raise ValueError("sources: no training images found in any enabled source")
    return data


def _with_source(record: ImageRecord, name: str, role: str) -> ImageRecord:
    """The record with the configured source name kept in its domain (for per-source scores)."""
    domain = record.domain
    if domain.microscope or domain.magnification or domain.camera:
        return replace(record, domain=replace(domain, split=role))
    return replace(record, domain=replace(domain, source=name, split=role))
