"""Scores of a cell model on labelled cells: per head, per source and per domain.

The called type is the most probable member of the most probable group
(``schema.decide_types``, as in the explanations). Type accuracy counts a call as right when
it is one of the types the label allows (a coarse label such as ``neutrophil`` allows its
members); group accuracy compares taxonomy groups (what a differential counts). Attribute
heads are scored on the cells labelled for them. Output: a JSON with every number and a
markdown summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from smearscope.attributes.cellset import CellSet, CropSpec, build_cell_set
from smearscope.attributes.model import load_checkpoint
from smearscope.attributes.predict import predict_crops
from smearscope.attributes.schema import NO_ATTRIBUTE_LABEL, TYPE_HEAD, attribute_heads, decide_types, type_group
from smearscope.datasets.io import write_json_atomic, write_text_atomic
from smearscope.datasets.records import ImageRecord
from smearscope.datasets.schema import SCHEMAS, taxonomy


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts ``[true, predicted]`` for integer labels in ``range(classes)``."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def macro_f1(matrix: np.ndarray) -> float:
    """Mean F1 over the classes that occur as truth in a confusion matrix."""
    scores = []
    for k in np.flatnonzero(matrix.sum(axis=1) > 0):
        tp = matrix[k, k]
        precision = tp / max(matrix[:, k].sum(), 1)
        recall = tp / matrix[k].sum()
        scores.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(scores)) if scores else float("nan")


def _type_metrics(probs: np.ndarray, cells: CellSet, index: np.ndarray) -> dict:
    vocabulary = cells.heads[TYPE_HEAD]
    allowed = cells.type_allowed.numpy()[index]
    labelled = allowed.any(axis=1)
    index, allowed = index[labelled], allowed[labelled]
    if not len(index):
        return {"n": 0}
    predicted = decide_types(probs[index], vocabulary)
    out = {"n": int(len(index)), "accuracy": float(allowed[np.arange(len(index)), predicted].mean())}
    label_groups = [type_group(cells.labels[i]) for i in index]
    keep = np.array([g != "wbc" for g in label_groups])  # "any white cell" says nothing about the group
    if keep.any():
        order = {g: i for i, g in enumerate(dict.fromkeys(taxonomy().groups.values()))}
        predicted_groups = [type_group(vocabulary[p]) for p in predicted]
        labelled_groups = {g for g, k in zip(label_groups, keep) if k}
        groups = sorted(labelled_groups | set(predicted_groups), key=order.get)
        truth = np.array([groups.index(g) for g, k in zip(label_groups, keep) if k])
        guess = np.array([groups.index(g) for g, k in zip(predicted_groups, keep) if k])
        matrix = confusion(truth, guess, len(groups))
        rows = [i for i, g in enumerate(groups) if g in labelled_groups]
        out.update(group_n=int(keep.sum()), group_accuracy=float((truth == guess).mean()), group_macro_f1=macro_f1(matrix),
                   groups=groups, group_rows=[groups[i] for i in rows], group_confusion=matrix[rows].tolist())
    fine = np.array([cells.labels[i] in vocabulary for i in index])
    if fine.any():
        truth = np.array([vocabulary.index(cells.labels[i]) for i in index[fine]])
        matrix = confusion(truth, predicted[fine], len(vocabulary))
        used = np.flatnonzero(matrix.sum(axis=0) + matrix.sum(axis=1))
        out["fine"] = {
            "n": int(fine.sum()), "accuracy": float((truth == predicted[fine]).mean()), "macro_f1": macro_f1(matrix),
            "types": [vocabulary[k] for k in used], "confusion": matrix[np.ix_(used, used)].tolist(),
        }
    return out


def _attribute_metrics(probs: np.ndarray, targets: np.ndarray, values: Sequence[str]) -> dict:
    labelled = targets != NO_ATTRIBUTE_LABEL
    if not labelled.any():
        return {"n": 0}
    truth, predicted = targets[labelled], probs[labelled].argmax(axis=1)
    matrix = confusion(truth, predicted, len(values))
    return {"n": int(labelled.sum()), "accuracy": float((truth == predicted).mean()), "macro_f1": macro_f1(matrix),
            "values": list(values), "confusion": matrix.tolist()}


def score_subset(probs: Mapping[str, np.ndarray], cells: CellSet, index: np.ndarray) -> dict:
    """Metrics of every head over the cells at ``index``."""
    heads = attribute_heads(cells.heads)
    targets = cells.attribute_targets.numpy()
    out = {"n": int(len(index)), TYPE_HEAD: _type_metrics(probs[TYPE_HEAD], cells, index), "attributes": {}}
    for j, name in enumerate(heads):
        if name in probs:
            metrics = _attribute_metrics(probs[name][index], targets[index, j], cells.heads[name])
            if metrics["n"]:
                out["attributes"][name] = metrics
    scored = out["attributes"]
    if scored:
        out["mean_attribute_accuracy"] = float(np.mean([m["accuracy"] for m in scored.values()]))
        out["mean_attribute_macro_f1"] = float(np.mean([m["macro_f1"] for m in scored.values()]))
        for schema in SCHEMAS:
            mine = [m["accuracy"] for k, m in scored.items() if k.startswith(f"{schema}_")]
            if mine:
                out[f"mean_attribute_accuracy_{schema}"] = float(np.mean(mine))
    return out


def score_predictions(probs: Mapping[str, np.ndarray], cells: CellSet) -> dict:
    """Metrics overall, per source and per domain."""
    everything = np.arange(len(cells))
    report = {"overall": score_subset(probs, cells, everything), "by_source": {}, "by_domain": {}}
    for key, names in (("by_source", cells.sources), ("by_domain", cells.domains)):
        for value in sorted(set(names)):
            index = np.array([i for i, n in enumerate(names) if n == value], dtype=np.int64)
            report[key][value] = score_subset(probs, cells, index)
    return report


def evaluate_cells(
    checkpoint: str | Path,
    records: Sequence[ImageRecord],
    out_dir: str | Path,
    name: str = "evaluation",
    um_per_px: Mapping[str, float] | None = None,
    batch_size: int = 64,
) -> dict:
    """Score a checkpoint on the labelled cells of ``records``; write ``<name>.json`` and ``<name>.md``.

    Records without a scale use ``um_per_px[source]``, else box-relative crops.
    """
    model = load_checkpoint(checkpoint)
    cfg = model.config
    spec = CropSpec(cfg.input_size, cfg.crop_um, cfg.fallback_box_scale, dict(um_per_px or {}))
    cells, issues = build_cell_set(records, cfg.heads, spec)
    if not len(cells):
        raise ValueError(f"no labelled cells to evaluate among {len(records)} records")
    probs = predict_crops(model, cells.images, batch_size)
    report = {"checkpoint": str(checkpoint), "cells": len(cells), **score_predictions(probs, cells),
              "issues": [str(i) for i in issues]}
    out_dir = Path(out_dir)
    write_json_atomic(out_dir / f"{name}.json", report)
    write_text_atomic(out_dir / f"{name}.md", markdown_report(report, title=name))
    return report


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.3f}"


def markdown_report(report: dict, title: str = "evaluation") -> str:
    """A readable summary of :func:`evaluate_cells` output."""
    lines = [f"# Cell model {title}", "", f"Checkpoint: `{report.get('checkpoint', '-')}`; cells: {report.get('cells', '-')}", ""]
    lines += ["| subset | cells | type acc | group acc | group macro-F1 | mean attribute acc |",
              "|---|---|---|---|---|---|"]
    rows = [("overall", report["overall"])]
    rows += [(f"source {k}", v) for k, v in report["by_source"].items()]
    rows += [(f"domain {k}", v) for k, v in report["by_domain"].items()]
    for label, metrics in rows:
        t = metrics[TYPE_HEAD]
        lines.append(f"| {label} | {metrics['n']} | {_fmt(t.get('accuracy'))} | {_fmt(t.get('group_accuracy'))} | "
                     f"{_fmt(t.get('group_macro_f1'))} | {_fmt(metrics.get('mean_attribute_accuracy'))} |")
    overall = report["overall"]
    if overall["attributes"]:
        lines += ["", "## Attribute heads (overall)", "", "| head | cells | accuracy | macro-F1 |", "|---|---|---|---|"]
        for head, m in overall["attributes"].items():
            lines.append(f"| {head} | {m['n']} | {_fmt(m['accuracy'])} | {_fmt(m['macro_f1'])} |")
    t = overall[TYPE_HEAD]
    if "groups" in t:
        groups = t["groups"]
        lines += ["", "## Type confusion by group (rows: labelled group, columns: predicted group)", "",
                  "| | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]
        for g, row in zip(t["group_rows"], t["group_confusion"]):
            lines.append(f"| {g} | " + " | ".join(str(v) for v in row) + " |")
    if report.get("issues"):
        lines += ["", f"## Issues ({len(report['issues'])})", ""] + [f"- {i}" for i in report["issues"][:50]]
    return "\n".join(lines) + "\n"
