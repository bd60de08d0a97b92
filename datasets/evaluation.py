"""Detection evaluation of a FiftyOne dataset, overall and per domain and source.

Per group of images (all; each ``domain`` such as ``H_100X_C1``; each ``source``):

- COCO mAP@0.5 and mAP@0.5:0.95 from FiftyOne's ``evaluate_detections(method="coco",
  classwise=True, compute_mAP=True)``, by type and class-agnostic (every label read as one
  class ``cell``), each recomputed independently with pycocotools' ``COCOeval`` on the same
  boxes and required to agree within ``COCO_TOLERANCE``;
- for cells matched at IoU >= ``iou`` regardless of type (the stored run, see below): type
  accuracy and, per attribute, accuracy and macro-F1.

The stored FiftyOne run ``eval_key`` matches class-agnostically (``classwise=False``): each
prediction gets ``<eval_key>`` (tp, or fp when unmatched or of another type),
``<eval_key>_id`` (the matched ground-truth id) and ``<eval_key>_attrs_wrong`` (attributes
that disagree with the matched cell). The report is kept in ``dataset.info`` under
``smearscope_evaluations``. Single-cell sets (``Classification`` labels) get the same
report without mAP.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from smearscope.datasets.fiftyone_bridge import GT_FIELD, PRED_FIELD, fiftyone, open_dataset
from smearscope.datasets.schema import UNKNOWN, attribute_specs, taxonomy

if TYPE_CHECKING:
    import fiftyone as fo

IOU = 0.5
IOU_SWEEP = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
COCO_TOLERANCE = 1e-6
AGNOSTIC_LABEL = "cell"
UNTYPED_LABELS = ("wbc",)  # ground truth that gives no cell type: left out of type accuracy
INFO_KEY = "smearscope_evaluations"
NONE = "(none)"

METRIC_NOTES = (
    "mAP@0.5:0.95 averages AP over IoU 0.50, 0.55, ..., 0.95 and over the classes that have "
    "ground truth in the group; mAP@0.5 uses IoU 0.50 only. AP is COCO's 101-point "
    "interpolated precision (precision made monotone, sampled at recall 0, 0.01, ..., 1).",
    "FiftyOne (method=coco) and pycocotools use the same definition here: at most 100 "
    "predictions per image and class (pycocotools maxDets=100; FiftyOne max_preds=100), "
    "no area ranges (area 'all'), no crowd boxes (iscrowd=0 for every box). They are "
    "computed independently and must agree within the stated tolerance; ties in confidence "
    "may be ordered differently by the two.",
    "Ultralytics' mAP50 / mAP50-95 (its val mode) differ by definition: AP is the area under "
    "an interpolated precision envelope (np.interp on 101 points, trapezoid rule), up to "
    "300 detections per image, low-confidence predictions kept (conf 0.001), and its matching "
    "differs in detail; its numbers are not directly comparable with these "
    "(see voxel51/fiftyone issue 3971).",
    "FiftyOne's own mAP for a classwise=False run (shown in its App) is neither of these: a "
    "prediction matched to a cell of another type counts as a false positive of the ground "
    "truth's class. smearscope therefore reports the classwise and the class-agnostic "
    "numbers and keeps the classwise=False run only for matching cells.",
    "By-type mAP compares labels exactly: a coarse ground-truth label (e.g. neutrophil, wbc) "
    "does not match a finer predicted type. Type accuracy counts a prediction inside a coarse "
    "label's members as correct and leaves out ground truth that gives no type (wbc).",
    "Single-cell sets (one Classification per image) have no boxes and no mAP: each image's "
    "predicted cell is matched to its true cell.",
    "Attribute accuracy and macro-F1 use matched cells whose ground-truth value is known; a "
    "prediction of 'unknown' counts as wrong; macro-F1 averages F1 over the values that "
    "occur in the ground truth.",
)


@dataclass
class AttributeScore:
    """Agreement of predicted and true values of one attribute on matched cells."""

    name: str
    cells: int
    accuracy: float
    macro_f1: float


@dataclass
class GroupMetrics:
    """Every number for one group of images (``kind``: all, domain or source)."""

    kind: str
    value: str
    images: int
    gt_cells: int
    pred_cells: int
    matched: int
    missed: int
    spurious: int
    map50: float | None = None
    map50_95: float | None = None
    coco_map50: float | None = None
    coco_map50_95: float | None = None
    agnostic_map50: float | None = None
    agnostic_map50_95: float | None = None
    coco_agnostic_map50: float | None = None
    coco_agnostic_map50_95: float | None = None
    typed_cells: int = 0
    type_accuracy: float | None = None
    attributes: list[AttributeScore] = field(default_factory=list)
    pr_precision50: list[float] | None = None  # class-agnostic, IoU 0.5, at recall 0..1 step 0.01

    @property
    def name(self) -> str:
        """``all``, ``domain H_100X_C1`` or ``source bccd``."""
        return "all" if self.kind == "all" else f"{self.kind} {self.value}"

    def coco_differences(self) -> dict[str, float]:
        """|FiftyOne - pycocotools| for each mAP that both computed."""
        pairs = {
            "map50": (self.map50, self.coco_map50),
            "map50_95": (self.map50_95, self.coco_map50_95),
            "agnostic_map50": (self.agnostic_map50, self.coco_agnostic_map50),
            "agnostic_map50_95": (self.agnostic_map50_95, self.coco_agnostic_map50_95),
        }
        out = {}
        for key, (ours, theirs) in pairs.items():
            if (ours is None) != (theirs is None):
                out[key] = math.inf
            elif ours is not None:
                out[key] = abs(ours - theirs)
        return out


@dataclass
class EvalReport:
    """The result of :func:`evaluate_dataset`."""

    dataset: str
    eval_key: str
    pred_field: str
    gt_field: str
    iou: float
    tolerance: float
    groups: list[GroupMetrics]
    confusion_labels: list[str]
    confusion: list[list[int]]  # rows: ground truth (+ (none) = spurious); columns: predicted (+ (none) = missed)
    notes: list[str] = field(default_factory=lambda: list(METRIC_NOTES))

    @property
    def max_coco_difference(self) -> float:
        """The largest FiftyOne vs pycocotools difference over all groups and mAPs."""
        return max((d for g in self.groups for d in g.coco_differences().values()), default=0.0)

    @property
    def coco_agrees(self) -> bool:
        """True when FiftyOne and pycocotools agree within the tolerance everywhere."""
        return self.max_coco_difference <= self.tolerance

    def group(self, kind: str, value: str | None = None) -> GroupMetrics:
        """The metrics of one group; ``KeyError`` when there is none."""
        for g in self.groups:
            if g.kind == kind and (kind == "all" or g.value == value):
                return g
        raise KeyError(f"no {kind} group {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON and ``dataset.info`` ready)."""
        data = asdict(self)
        data["max_coco_difference"] = self.max_coco_difference if math.isfinite(self.max_coco_difference) else None
        data["coco_agrees"] = self.coco_agrees
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EvalReport":
        """The inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["groups"] = [
            GroupMetrics(**{**g, "attributes": [AttributeScore(**a) for a in g.get("attributes", [])]})
            for g in data["groups"]
        ]
        return cls(**values)


@dataclass
class _Cell:
    """One matched pair, missed ground-truth cell or spurious prediction."""

    domain: str | None
    source: str | None
    gt_label: str | None
    pred_label: str | None
    gt_attrs: dict[str, str]
    pred_attrs: dict[str, str]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence FiftyOne's progress logging and pycocotools' prints."""
    logger = logging.getLogger("fiftyone")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _field_kind(dataset: "fo.Dataset", name: str) -> str:
    """``detections`` or ``classification``; ``ValueError`` for a missing or other field."""
    fo = fiftyone()
    if not dataset.has_sample_field(name):
        raise ValueError(f"dataset {dataset.name} has no field {name!r}")
    doc_type = getattr(dataset.get_field(name), "document_type", None)
    kinds = {fo.Detections: "detections", fo.Classification: "classification"}
    if doc_type not in kinds:
        shown = getattr(doc_type, "__name__", doc_type)
        raise ValueError(f"dataset {dataset.name}: field {name!r} holds {shown}, not Detections or a Classification")
    return kinds[doc_type]


def _label_attributes(label: Any) -> dict[str, str]:
    return {name: label[name] for name in attribute_specs() if label.has_field(name) and label[name] is not None}


def _type_correct(gt_label: str, pred_label: str) -> bool:
    return pred_label == gt_label or pred_label in taxonomy().members(gt_label)


def _disagreeing(gt_attrs: dict[str, str], pred_attrs: dict[str, str]) -> list[str]:
    return sorted(n for n, v in gt_attrs.items() if v != UNKNOWN and pred_attrs.get(n, UNKNOWN) != v)


def _labels(sample: Any, field_name: str) -> list[Any]:
    labels = sample[field_name]
    if labels is None:
        return []
    return list(labels.detections) if hasattr(labels, "detections") else [labels]


def _collect(
    view: "fo.DatasetView", gt_field: str, pred_field: str, eval_key: str, detections: bool
) -> tuple[list[_Cell], dict[str, list[str]]]:
    """Every matched pair, missed and spurious cell of the stored run, and for each matched
    prediction id the attributes that disagree with its ground truth. A Classification
    (single-cell image) is matched to the image's ground truth."""
    cells: list[_Cell] = []
    wrong: dict[str, list[str]] = {}
    id_key = f"{eval_key}_id"
    for sample in view.select_fields([gt_field, pred_field, "domain", "source"]).iter_samples(progress=False):
        gts = {d.id: d for d in _labels(sample, gt_field)}
        preds = _labels(sample, pred_field)
        matched_gt = set()
        where = (sample["domain"], sample["source"])
        for pred in preds:
            if detections:
                gt = gts.get(pred[id_key]) if pred.has_field(id_key) and pred[id_key] else None
            else:
                gt = next(iter(gts.values()), None)
            pred_attrs = _label_attributes(pred)
            if gt is None:
                cells.append(_Cell(*where, None, pred.label, {}, pred_attrs))
                continue
            matched_gt.add(gt.id)
            gt_attrs = _label_attributes(gt)
            cells.append(_Cell(*where, gt.label, pred.label, gt_attrs, pred_attrs))
            wrong[pred.id] = _disagreeing(gt_attrs, pred_attrs)
        for gt_id, gt in gts.items():
            if gt_id not in matched_gt:
                cells.append(_Cell(*where, gt.label, None, _label_attributes(gt), {}))
    return cells, wrong


def attribute_scores(pairs: Sequence[tuple[dict[str, str], dict[str, str]]]) -> list[AttributeScore]:
    """Accuracy and macro-F1 per attribute over (ground truth, predicted) attribute dicts."""
    names = sorted({n for gt, _ in pairs for n, v in gt.items() if v != UNKNOWN}, key=list(attribute_specs()).index)
    scores = []
    for name in names:
        truth, guess = [], []
        for gt, pred in pairs:
            if gt.get(name, UNKNOWN) != UNKNOWN:
                truth.append(gt[name])
                guess.append(pred.get(name, UNKNOWN))
        correct = sum(t == g for t, g in zip(truth, guess))
        f1s = []
        for value in sorted(set(truth)):
            tp = sum(t == value and g == value for t, g in zip(truth, guess))
            fp = sum(t != value and g == value for t, g in zip(truth, guess))
            fn = sum(t == value and g != value for t, g in zip(truth, guess))
            f1s.append(2 * tp / (2 * tp + fp + fn))
        scores.append(AttributeScore(name, len(truth), correct / len(truth), sum(f1s) / len(f1s)))
    return scores


def _fill_cell_metrics(group: GroupMetrics, cells: Sequence[_Cell]) -> None:
    matched = [c for c in cells if c.gt_label is not None and c.pred_label is not None]
    group.matched = len(matched)
    group.missed = sum(c.pred_label is None for c in cells)
    group.spurious = sum(c.gt_label is None for c in cells)
    typed = [c for c in matched if c.gt_label not in UNTYPED_LABELS]
    group.typed_cells = len(typed)
    group.type_accuracy = sum(_type_correct(c.gt_label, c.pred_label) for c in typed) / len(typed) if typed else None
    group.attributes = attribute_scores([(c.gt_attrs, c.pred_attrs) for c in matched])


def confusion_matrix(cells: Iterable[_Cell]) -> tuple[list[str], list[list[int]]]:
    """Labels and counts: rows ground truth then ``(none)``, columns predicted then ``(none)``."""
    counts = Counter((c.gt_label or NONE, c.pred_label or NONE) for c in cells)
    order = {t: i for i, t in enumerate(taxonomy().types)}
    labels = sorted({a for pair in counts for a in pair} - {NONE}, key=lambda t: (order.get(t, len(order)), t))
    labels.append(NONE)
    return labels, [[counts.get((row, col), 0) for col in labels] for row in labels]


def _map_from_precision(precision: Any, thresholds: Sequence[float], at: float | None) -> float | None:
    """Mean of the valid (> -1) precision entries, at one IoU threshold or over all."""
    import numpy as np

    precision = np.asarray(precision)
    if at is not None:
        index = [i for i, t in enumerate(thresholds) if abs(t - at) < 1e-9][0]
        precision = precision[index]
    valid = precision[precision > -1]
    return float(valid.mean()) if valid.size else None


def _fiftyone_maps(view: "fo.DatasetView", gt_field: str, pred_field: str, agnostic: bool) -> tuple[float | None, float | None, list[float] | None]:
    """(mAP@0.5, mAP@0.5:0.95, class-agnostic precision curve at 0.5) from FiftyOne."""
    if agnostic:
        view = view.set_field(f"{gt_field}.detections.label", AGNOSTIC_LABEL).set_field(
            f"{pred_field}.detections.label", AGNOSTIC_LABEL
        )
    with _quiet():
        results = view.evaluate_detections(
            pred_field, gt_field, eval_key=None, method="coco", iou=IOU, classwise=True,
            compute_mAP=True, iou_threshs=list(IOU_SWEEP), progress=False,
        )
    thresholds = [float(t) for t in results.iou_threshs]
    map50 = _map_from_precision(results.precision, thresholds, IOU)
    map50_95 = _map_from_precision(results.precision, thresholds, None)
    curve = None
    if agnostic and len(results.classes) == 1 and results.precision[0, 0, 0] > -1:
        curve = [float(p) for p in results.precision[thresholds.index(IOU), 0]]
    return map50, map50_95, curve


def coco_dicts(view: "fo.DatasetView", gt_field: str, pred_field: str, agnostic: bool) -> tuple[dict, list[dict]]:
    """Ground truth as a COCO dataset dict and predictions as a COCO results list, boxes in
    pixels (from each sample's metadata)."""
    view.compute_metadata()
    widths, heights = view.values(["metadata.width", "metadata.height"])
    gt_labels, gt_boxes = view.values([f"{gt_field}.detections.label", f"{gt_field}.detections.bounding_box"])
    pr_labels, pr_boxes, pr_scores = view.values(
        [f"{pred_field}.detections.label", f"{pred_field}.detections.bounding_box", f"{pred_field}.detections.confidence"]
    )
    names = sorted({AGNOSTIC_LABEL} if agnostic else {l for ls in gt_labels + pr_labels for l in (ls or [])})
    category = {n: i + 1 for i, n in enumerate(names)}
    images, annotations, results = [], [], []
    for index, (width, height) in enumerate(zip(widths, heights), start=1):
        images.append({"id": index, "width": width, "height": height})
        for label, box in zip(gt_labels[index - 1] or [], gt_boxes[index - 1] or []):
            x, y, w, h = box[0] * width, box[1] * height, box[2] * width, box[3] * height
            annotations.append({
                "id": len(annotations) + 1, "image_id": index, "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                "category_id": category[AGNOSTIC_LABEL if agnostic else label],
            })
        for label, box, score in zip(pr_labels[index - 1] or [], pr_boxes[index - 1] or [], pr_scores[index - 1] or []):
            x, y, w, h = box[0] * width, box[1] * height, box[2] * width, box[3] * height
            results.append({
                "image_id": index, "bbox": [x, y, w, h], "score": float(score),
                "category_id": category[AGNOSTIC_LABEL if agnostic else label],
            })
    gt = {"images": images, "annotations": annotations, "categories": [{"id": i, "name": n} for n, i in category.items()]}
    return gt, results


def pycocotools_maps(gt: dict, results: list[dict]) -> tuple[float | None, float | None]:
    """(mAP@0.5, mAP@0.5:0.95) of COCO dicts with pycocotools' ``COCOeval`` (bbox, area all,
    maxDets 100); ``None`` when there is no ground truth."""
    import numpy as np
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not gt["annotations"]:
        return None, None
    if not results:
        return 0.0, 0.0
    with _quiet():
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.iouThrs = np.array(IOU_SWEEP, dtype=np.float64)
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # T x R x K, area all, maxDets 100
    thresholds = list(IOU_SWEEP)
    return _map_from_precision(precision, thresholds, IOU), _map_from_precision(precision, thresholds, None)


def _groups(view: "fo.DatasetView") -> list[tuple[str, str | None]]:
    """(kind, value) of every group: all, each domain (when it is not just a source name), each source."""
    sources = sorted(s for s in view.distinct("source") if s)
    domains = sorted(d for d in view.distinct("domain") if d and d not in sources)
    return [("all", None)] + [("domain", d) for d in domains] + [("source", s) for s in sources]


def _group_view(view: "fo.DatasetView", kind: str, value: str | None) -> "fo.DatasetView":
    from fiftyone import ViewField as F

    return view if kind == "all" else view.match(F(kind) == value)


def evaluate_dataset(
    dataset: "fo.Dataset | str",
    pred_field: str = PRED_FIELD,
    gt_field: str = GT_FIELD,
    eval_key: str = "eval",
    classes: Sequence[str] | None = None,
) -> EvalReport:
    """Evaluate ``pred_field`` against ``gt_field`` overall, per domain and per source.

    ``classes`` (optional) restricts both fields to these labels first (e.g. the WBC
    types, leaving out RBCs and platelets). Stores the class-agnostic matching run as
    ``eval_key`` (replacing an earlier one) and the report in ``dataset.info``.

    Single-cell sets (``Classification`` fields) get the same report without mAP: each
    image's predicted cell is matched to its true cell; the stored run is FiftyOne's
    ``evaluate_classifications`` (``<eval_key>`` True/False on each sample).
    """
    from fiftyone import ViewField as F

    dataset = open_dataset(dataset) if isinstance(dataset, str) else dataset
    label_kind = _field_kind(dataset, gt_field)
    if _field_kind(dataset, pred_field) != label_kind:
        raise ValueError(f"dataset {dataset.name}: {gt_field!r} and {pred_field!r} hold different kinds of labels")
    detections = label_kind == "detections"
    if not eval_key.isidentifier():
        raise ValueError(f"eval key {eval_key!r} must be a plain identifier (letters, digits, _)")
    view = dataset.view()
    if classes:
        keep = F("label").is_in(list(classes))
        view = view.filter_labels(gt_field, keep, only_matches=False).filter_labels(pred_field, keep, only_matches=False)
    if dataset.has_evaluation(eval_key):
        dataset.delete_evaluation(eval_key)
    wrong_path = attrs_wrong_path(pred_field, eval_key, detections)
    if dataset.has_sample_field(wrong_path):
        dataset.delete_sample_field(wrong_path)
    with _quiet():
        if detections:
            view.evaluate_detections(
                pred_field, gt_field, eval_key=eval_key, method="coco", iou=IOU, classwise=False,
                compute_mAP=True, progress=False,
            )
        else:
            view.evaluate_classifications(pred_field, gt_field, eval_key=eval_key, method="simple", progress=False)
    cells, wrong = _collect(view, gt_field, pred_field, eval_key, detections)
    if wrong:
        dataset.set_label_values(wrong_path, wrong, dynamic=True)
    groups = []
    for kind, value in _groups(view):
        group_view = _group_view(view, kind, value)
        group_cells = [c for c in cells if kind == "all" or getattr(c, kind) == value]
        group = GroupMetrics(
            kind=kind,
            value=value or "all",
            images=len(group_view),
            gt_cells=sum(c.gt_label is not None for c in group_cells),
            pred_cells=sum(c.pred_label is not None for c in group_cells),
            matched=0, missed=0, spurious=0,
        )
        _fill_cell_metrics(group, group_cells)
        if detections:
            _fill_maps(group, group_view, gt_field, pred_field)
        groups.append(group)
    labels, matrix = confusion_matrix(cells)
    report = EvalReport(
        dataset=dataset.name, eval_key=eval_key, pred_field=pred_field, gt_field=gt_field, iou=IOU,
        tolerance=COCO_TOLERANCE, groups=groups, confusion_labels=labels, confusion=matrix,
    )
    store_report(dataset, report)
    return report


def attrs_wrong_path(pred_field: str, eval_key: str, detections: bool = True) -> str:
    """The label attribute listing, per matched prediction, the attributes that disagree."""
    return f"{pred_field}.detections.{eval_key}_attrs_wrong" if detections else f"{pred_field}.{eval_key}_attrs_wrong"


def _fill_maps(group: GroupMetrics, group_view: "fo.DatasetView", gt_field: str, pred_field: str) -> None:
    """The FiftyOne and pycocotools mAPs of one group, by type and class-agnostic."""
    group.map50, group.map50_95, _ = _fiftyone_maps(group_view, gt_field, pred_field, agnostic=False)
    group.agnostic_map50, group.agnostic_map50_95, group.pr_precision50 = _fiftyone_maps(
        group_view, gt_field, pred_field, agnostic=True
    )
    group.coco_map50, group.coco_map50_95 = pycocotools_maps(*coco_dicts(group_view, gt_field, pred_field, False))
    group.coco_agnostic_map50, group.coco_agnostic_map50_95 = pycocotools_maps(
        *coco_dicts(group_view, gt_field, pred_field, True)
    )


def store_report(dataset: "fo.Dataset", report: EvalReport) -> None:
    """Keep the report in ``dataset.info[INFO_KEY][eval_key]``."""
    info = dict(dataset.info or {})
    stored = dict(info.get(INFO_KEY) or {})
    stored[report.eval_key] = report.to_dict()
    info[INFO_KEY] = stored
    dataset.info = info
    dataset.save()


def load_report(dataset: "fo.Dataset | str", eval_key: str = "eval") -> EvalReport:
    """The report :func:`evaluate_dataset` stored; ``ValueError`` when there is none."""
    dataset = open_dataset(dataset) if isinstance(dataset, str) else dataset
    stored = (dataset.info or {}).get(INFO_KEY) or {}
    if eval_key not in stored:
        raise ValueError(f"dataset {dataset.name} has no smearscope evaluation {eval_key!r}; known: {', '.join(stored) or 'none'}")
    return EvalReport.from_dict(json.loads(json.dumps(stored[eval_key])))  # plain lists and dicts
