"""Saved views that take a user straight to a model's mistakes in the FiftyOne App.

- ``<eval_key> <domain> false negatives`` / ``... false positives``: per domain, ground-truth
  cells the evaluation marked ``fn`` (missed, or matched by a prediction of another type)
  and predictions marked ``fp`` (spurious, or of another type); for single-cell sets
  (``Classification`` labels) ``<eval_key> <domain> misclassified`` instead;
- ``<eval_key> attribute disagreements``: matched predictions whose attributes differ from
  their ground truth;
- ``<pred_field> flagged for review``: cells the cell model flagged for a person to check.

Views need the evaluation of :func:`smearscope.datasets.evaluation.evaluate_dataset`
(except the review view); what cannot be made yet is left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from smearscope.datasets.evaluation import attrs_wrong_path
from smearscope.datasets.fiftyone_bridge import GT_FIELD, PRED_FIELD, fiftyone

if TYPE_CHECKING:
    import fiftyone as fo


def _is_detections(dataset: "fo.Dataset", name: str) -> bool:
    fo = fiftyone()
    return dataset.has_sample_field(name) and getattr(dataset.get_field(name), "document_type", None) is fo.Detections


def review_views(
    dataset: "fo.Dataset", pred_field: str = PRED_FIELD, gt_field: str = GT_FIELD, eval_key: str = "eval"
) -> dict[str, tuple["fo.DatasetView", str]]:
    """The views that can be made now: name -> (view, description)."""
    from fiftyone import ViewField as F

    views: dict[str, tuple[fo.DatasetView, str]] = {}
    if not dataset.has_sample_field(pred_field):
        return views
    detections = _is_detections(dataset, pred_field)
    evaluated = dataset.has_evaluation(eval_key) and dataset.has_sample_field(gt_field)
    for domain in sorted(d for d in dataset.distinct("domain") if d) if evaluated else []:
        in_domain = dataset.match(F("domain") == domain)
        if detections:
            views[f"{eval_key} {domain} false negatives"] = (
                in_domain.filter_labels(gt_field, F(eval_key) == "fn"),
                f"{domain}: ground-truth cells missed or given another type",
            )
            views[f"{eval_key} {domain} false positives"] = (
                in_domain.filter_labels(pred_field, F(eval_key) == "fp"),
                f"{domain}: predicted cells with no match or of another type",
            )
        else:
            views[f"{eval_key} {domain} misclassified"] = (
                in_domain.match(F(eval_key) == False),  # noqa: E712 (a query expression)
                f"{domain}: single cells given another type",
            )
    wrong = attrs_wrong_path(pred_field, eval_key, detections)
    if evaluated and dataset.has_sample_field(wrong):
        disagree = F(f"{eval_key}_attrs_wrong").length() > 0
        views[f"{eval_key} attribute disagreements"] = (
            dataset.filter_labels(pred_field, disagree),
            "matched cells whose predicted attributes differ from the ground truth",
        )
    review = f"{pred_field}.detections.review" if detections else f"{pred_field}.review"
    if dataset.has_sample_field(review):
        flagged = (
            dataset.filter_labels(pred_field, F("review") == True)  # noqa: E712 (a query expression)
            if detections
            else dataset.match(F(review) == True)  # noqa: E712
        )
        views[f"{pred_field} flagged for review"] = (flagged, "cells the cell model flagged for review")
    return views


def save_review_views(
    dataset: "fo.Dataset", pred_field: str = PRED_FIELD, gt_field: str = GT_FIELD, eval_key: str = "eval"
) -> list[str]:
    """Save (or refresh) the review views on the dataset; return their names."""
    views = review_views(dataset, pred_field, gt_field, eval_key)
    for name, (view, description) in views.items():
        dataset.save_view(name, view, description=description, overwrite=True)
    return list(views)


def view_slug(name: str) -> str:
    """The URL slug FiftyOne gives a saved view's name (``?view=<slug>`` in the App)."""
    fiftyone()
    import fiftyone.core.utils as fou

    return fou.to_slug(name)
