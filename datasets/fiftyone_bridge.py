"""Records into persistent FiftyOne datasets, where users look at their data and model mistakes.

A sample holds one image: its ground truth as ``Detections`` (boxes relative ``[x, y, w, h]``)
or, for single-cell sets, one ``Classification``; the label is the unified cell type and
each label carries ``source_label`` and every attribute under its qualified name
(``leukemiaattri_cell_size``, ...). Domain fields sit on the sample: ``source``,
``microscope``, ``magnification``, ``camera``, ``domain`` (e.g. ``H_100X_C1``), ``patient``,
``diagnosis``, ``split``, ``um_per_px``; a source's extras go to ``source_info``.

Samples are keyed on their absolute file path: importing the same files again updates
their samples instead of adding new ones. FiftyOne is imported inside the functions, after
:func:`smearscope.datasets.runtime.prepare_fiftyone`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smearscope.datasets.io import check_image_file
from smearscope.datasets.records import ImageRecord, LoadIssue
from smearscope.datasets.runtime import prepare_fiftyone

if TYPE_CHECKING:
    import fiftyone as fo

GT_FIELD = "ground_truth"
PRED_FIELD = "predictions"
DOMAIN_FIELDS = ("source", "microscope", "magnification", "camera", "domain", "patient", "diagnosis", "split", "um_per_px")
INFO_FIELD = "source_info"
LABEL_KINDS = ("auto", "detections", "classification")
WHOLE_IMAGE_TOLERANCE_PX = 0.5
BATCH = 500


@dataclass(frozen=True)
class CellExtras:
    """What the cell model says about one predicted cell beyond its type and attributes.

    ``attribute_probs`` maps a qualified attribute name to the probability of the predicted
    value; ``review`` flags a cell a person should look at, ``rationale`` says why the cell
    got its type (from its attributes).
    """

    type_prob: float | None = None
    attribute_probs: Mapping[str, float] = dataclasses.field(default_factory=dict)
    review: bool = False
    rationale: str = ""


@dataclass
class ImportSummary:
    """What an import or a prediction upload did to a FiftyOne dataset."""

    dataset: str
    field: str
    label_kind: str
    added: int = 0
    updated: int = 0
    issues: list[LoadIssue] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.dataset}.{self.field} ({self.label_kind}): {self.added} added, {self.updated} updated, "
            f"{len(self.issues)} skipped or noted"
        )


def fiftyone():
    """The ``fiftyone`` module, imported after smearscope's offline set-up."""
    prepare_fiftyone()
    import fiftyone as fo

    return fo


def open_dataset(name: str, create: bool = False) -> "fo.Dataset":
    """The persistent FiftyOne dataset ``name``; created when missing if ``create``, else a
    one-line ``ValueError`` listing the datasets that exist."""
    fo = fiftyone()
    if fo.dataset_exists(name):
        return fo.load_dataset(name)
    if not create:
        known = ", ".join(fo.list_datasets()) or "none"
        raise ValueError(f"FiftyOne dataset {name!r} not found; existing: {known}")
    dataset = fo.Dataset(name, persistent=True)
    return dataset


def _dataset(dataset: "fo.Dataset | str") -> "fo.Dataset":
    return open_dataset(dataset) if isinstance(dataset, str) else dataset


def is_whole_image_cell(record: ImageRecord) -> bool:
    """True when a record holds exactly one cell whose box is the whole image."""
    if len(record) != 1:
        return False
    expected = [0.0, 0.0, float(record.width), float(record.height)]
    return all(abs(a - b) <= WHOLE_IMAGE_TOLERANCE_PX for a, b in zip(record.boxes_xyxy[0].tolist(), expected))


def relative_box(record: ImageRecord, index: int) -> list[float]:
    """Box ``index`` of a record as FiftyOne wants it: ``[x, y, w, h]`` relative to the image."""
    x1, y1, x2, y2 = record.boxes_xyxy[index].tolist()
    return [x1 / record.width, y1 / record.height, (x2 - x1) / record.width, (y2 - y1) / record.height]


def _label_kind(dataset: "fo.Dataset", field_name: str, records: Sequence[ImageRecord], requested: str) -> str:
    """``detections`` or ``classification`` for ``field_name``, agreeing with the field if it exists."""
    fo = fiftyone()
    if requested not in LABEL_KINDS:
        raise ValueError(f"label kind must be one of {', '.join(LABEL_KINDS)}, not {requested!r}")
    existing = None
    if dataset.has_sample_field(field_name):
        doc_type = getattr(dataset.get_field(field_name), "document_type", None)
        existing = {fo.Detections: "detections", fo.Classification: "classification"}.get(doc_type)
        if existing is None:
            raise ValueError(f"dataset {dataset.name}: field {field_name!r} holds {doc_type}, not Detections or a Classification")
    if requested == "auto":
        if existing is not None:
            return existing
        return "classification" if records and all(is_whole_image_cell(r) for r in records) else "detections"
    if existing is not None and existing != requested:
        raise ValueError(f"dataset {dataset.name}: field {field_name!r} already holds {existing}, cannot add {requested}")
    return requested


def _attributes(record: ImageRecord, index: int) -> dict[str, Any]:
    return {name: values[index] for name, values in record.attributes.items()}


def _prediction_extras(extras: CellExtras | None) -> dict[str, Any]:
    if extras is None:
        return {}
    values: dict[str, Any] = {"review": bool(extras.review), "rationale": extras.rationale}
    if extras.type_prob is not None:
        values["type_prob"] = float(extras.type_prob)
    values.update({f"{name}_prob": float(p) for name, p in extras.attribute_probs.items()})
    return values


def record_labels(
    record: ImageRecord, kind: str, prediction: bool = False, extras: Sequence[CellExtras] | None = None
) -> "fo.Detections | fo.Classification | None":
    """A record's cells as FiftyOne labels (``kind``: detections or classification).

    Ground truth labels carry ``source_label``; predicted ones carry ``confidence`` and,
    when given, the cell model's extras (probabilities, ``review``, ``rationale``).
    """
    fo = fiftyone()
    if extras is not None and len(extras) != len(record):
        raise ValueError(f"{record.path}: {len(extras)} extras for {len(record)} cells")

    def attrs(i: int) -> dict[str, Any]:
        values = _attributes(record, i)
        if prediction:
            values.update(_prediction_extras(extras[i] if extras is not None else None))
        else:
            values["source_label"] = record.source_labels[i]
        return values

    def confidence(i: int) -> float | None:
        return float(record.scores[i]) if prediction and record.scores is not None else None

    if kind == "classification":
        if len(record) == 0:
            return None
        if len(record) != 1:
            raise ValueError(f"{record.path}: {len(record)} cells cannot be one Classification")
        return fo.Classification(label=record.cell_types[0], confidence=confidence(0), **attrs(0))
    return fo.Detections(detections=[
        fo.Detection(label=record.cell_types[i], bounding_box=relative_box(record, i), confidence=confidence(i), **attrs(i))
        for i in range(len(record))
    ])


def domain_values(record: ImageRecord) -> dict[str, Any]:
    """The sample-level domain fields of a record."""
    domain = record.domain
    return {
        "source": domain.source,
        "microscope": domain.microscope,
        "magnification": domain.magnification,
        "camera": domain.camera,
        "domain": domain.name,
        "patient": domain.patient,
        "diagnosis": domain.diagnosis,
        "split": domain.split,
        "um_per_px": domain.um_per_px,
    }


def _fill(sample: Any, record: ImageRecord, field_name: str, labels: Any) -> None:
    fo = fiftyone()
    sample.metadata = fo.ImageMetadata(width=record.width, height=record.height)
    sample[field_name] = labels
    for name, value in domain_values(record).items():
        sample[name] = value
    sample[INFO_FIELD] = record.info or None
    split = record.domain.split
    if split and split not in sample.tags:
        sample.tags.append(split)


def _usable(records: Iterable[ImageRecord], issues: list[LoadIssue]) -> dict[str, ImageRecord]:
    """Absolute path -> record for the records whose image file is readable; the rest are issues."""
    by_path: dict[str, ImageRecord] = {}
    for record in records:
        path = os.path.abspath(os.path.expanduser(record.path))
        try:
            check_image_file(path)
        except ValueError as exc:
            issues.append(LoadIssue(path, str(exc).removeprefix(f"{path}: ") + ": skipped"))
            continue
        if path in by_path:
            issues.append(LoadIssue(path, "given twice: the later record is kept"))
        by_path[path] = record
    return by_path


def _declare_fields(dataset: "fo.Dataset") -> None:
    """Declare the domain fields, so that values missing from some records can be ``None``."""
    fo = fiftyone()
    for name in DOMAIN_FIELDS:
        if not dataset.has_sample_field(name):
            dataset.add_sample_field(name, fo.FloatField if name == "um_per_px" else fo.StringField)
    if not dataset.has_sample_field(INFO_FIELD):
        dataset.add_sample_field(INFO_FIELD, fo.DictField)


def _existing_ids(dataset: "fo.Dataset") -> dict[str, str]:
    if len(dataset) == 0:
        return {}
    filepaths, ids = dataset.values(["filepath", "id"])
    return dict(zip(filepaths, ids))


def import_records(
    records: Iterable[ImageRecord],
    name: str,
    field: str = GT_FIELD,
    label_kind: str = "auto",
    issues: Iterable[LoadIssue] = (),
) -> ImportSummary:
    """Put records into the persistent dataset ``name`` (created when missing).

    New images become samples; images already in the dataset (same absolute path) get
    their labels, metadata and domain fields replaced, keeping other fields and tags.
    ``issues`` from the loader are carried into the summary; unreadable images are
    reported and skipped. ``label_kind`` ``auto`` stores a ``Classification`` when every
    record is one whole-image cell (a single-cell set) and ``Detections`` otherwise.
    """
    fo = fiftyone()
    records = list(records)
    summary_issues = list(issues)
    by_path = _usable(records, summary_issues)
    dataset = open_dataset(name, create=True)
    _declare_fields(dataset)
    kind = _label_kind(dataset, field, list(by_path.values()), label_kind)
    summary = ImportSummary(dataset=name, field=field, label_kind=kind, issues=summary_issues)
    existing = _existing_ids(dataset)
    new_paths = [p for p in by_path if p not in existing]
    for start in range(0, len(new_paths), BATCH):
        samples = []
        for path in new_paths[start:start + BATCH]:
            record = by_path[path]
            sample = fo.Sample(filepath=path)
            _fill(sample, record, field, record_labels(record, kind))
            samples.append(sample)
        dataset.add_samples(samples, progress=False)
    summary.added = len(new_paths)
    update_ids = [existing[p] for p in by_path if p in existing]
    if update_ids:
        for sample in dataset.select(update_ids).iter_samples(autosave=True, progress=False):
            record = by_path[sample.filepath]
            _fill(sample, record, field, record_labels(record, kind))
        summary.updated = len(update_ids)
    dataset.add_dynamic_sample_fields()
    dataset.save()
    return summary


def add_predictions(
    dataset: "fo.Dataset | str",
    records: Iterable[ImageRecord],
    field: str = PRED_FIELD,
    extras: Sequence[Sequence[CellExtras]] | None = None,
) -> ImportSummary:
    """Attach predicted cells to the samples of the same images (matched by absolute path).

    Each prediction carries its unified type as label, ``confidence`` (the detection
    score), the predicted attributes and, from ``extras`` (one list per record, one entry
    per cell), ``type_prob``, ``<attribute>_prob``, ``review`` and ``rationale``. A
    record whose image is not in the dataset is reported and skipped. Predictions replace
    earlier ones in the same field. The label kind follows the ground truth's
    (``Classification`` for single-cell sets).
    """
    dataset = _dataset(dataset)
    records = list(records)
    if extras is not None and len(extras) != len(records):
        raise ValueError(f"{len(extras)} extras lists for {len(records)} records")
    issues: list[LoadIssue] = []
    by_path: dict[str, tuple[ImageRecord, Sequence[CellExtras] | None]] = {}
    for i, record in enumerate(records):
        by_path[os.path.abspath(os.path.expanduser(record.path))] = (record, extras[i] if extras is not None else None)
    existing = _existing_ids(dataset)
    for path in by_path:
        if path not in existing:
            issues.append(LoadIssue(path, f"not in FiftyOne dataset {dataset.name}: prediction skipped"))
    matched = [p for p in by_path if p in existing]
    if dataset.has_sample_field(field) or not dataset.has_sample_field(GT_FIELD):
        kind = _label_kind(dataset, field, [by_path[p][0] for p in matched], "auto")
    else:
        kind = _label_kind(dataset, GT_FIELD, [], "auto")
    summary = ImportSummary(dataset=dataset.name, field=field, label_kind=kind, issues=issues)
    if matched:
        for sample in dataset.select([existing[p] for p in matched]).iter_samples(autosave=True, progress=False):
            record, cell_extras = by_path[sample.filepath]
            try:
                sample[field] = record_labels(record, kind, prediction=True, extras=cell_extras)
            except ValueError as exc:
                issues.append(LoadIssue(sample.filepath, str(exc).removeprefix(f"{record.path}: ") + ": prediction skipped"))
                continue
            summary.updated += 1
        dataset.add_dynamic_sample_fields()
    return summary
