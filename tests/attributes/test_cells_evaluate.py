"""Scores: partial labels, groups, fine types, masked attributes, per source and per domain."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smearscope.attributes.cellset import CellSet
from smearscope.attributes.evaluate import macro_f1, markdown_report, score_predictions
from smearscope.attributes.schema import decide_types, default_type_vocabulary, encode_targets


def _cells(labels, sizes, sources, domains) -> CellSet:
    heads = {"cell_type": list(default_type_vocabulary()), "wbcatt_cell_size": ["small", "big"]}
    allowed, targets = encode_targets(labels, [{"wbcatt_cell_size": s} for s in sizes], heads)
    n = len(labels)
    return CellSet(torch.zeros(n, 8, 8, 3, dtype=torch.uint8), torch.from_numpy(allowed), torch.from_numpy(targets),
                   list(labels), list(labels), list(sources), list(domains), [f"{i}.png" for i in range(n)], heads)


def _probs(cells: CellSet, types: list[str], sizes: list[int]) -> dict[str, np.ndarray]:
    vocabulary = cells.heads["cell_type"]
    type_probs = np.full((len(types), len(vocabulary)), 0.01)
    for i, t in enumerate(types):
        type_probs[i, vocabulary.index(t)] = 0.9
    return {"cell_type": type_probs, "wbcatt_cell_size": np.eye(2)[sizes] * 0.8 + 0.1}


def test_scores_respect_partial_labels_groups_and_unknowns():
    cells = _cells(
        ["neutrophil", "segmented_neutrophil", "segmented_neutrophil", "lymphocyte", "wbc"],
        ["big", "unknown", "small", "small", "big"],
        ["a", "a", "b", "b", "b"], ["H_100X_C1", "H_100X_C1", "L_40X_C2", "L_40X_C2", "L_40X_C2"],
    )
    probs = _probs(cells, ["band_neutrophil", "band_neutrophil", "segmented_neutrophil", "monocyte", "eosinophil"],
                   [1, 0, 1, 0, 0])
    report = score_predictions(probs, cells)
    t = report["overall"]["cell_type"]
    assert t["n"] == 5
    assert t["accuracy"] == pytest.approx(3 / 5)  # band allowed by "neutrophil"; eosinophil allowed by "wbc"
    assert t["group_n"] == 4 and t["group_accuracy"] == pytest.approx(3 / 4)  # "wbc" says nothing about the group
    assert t["fine"]["n"] == 3 and t["fine"]["accuracy"] == pytest.approx(1 / 3)
    assert t["group_rows"] == ["neutrophil", "lymphocyte"]
    size = report["overall"]["attributes"]["wbcatt_cell_size"]
    assert size["n"] == 4 and size["accuracy"] == pytest.approx(2 / 4)  # the unknown row is not scored
    assert set(report["by_source"]) == {"a", "b"} and report["by_source"]["a"]["n"] == 2
    assert report["by_domain"]["L_40X_C2"]["cell_type"]["accuracy"] == pytest.approx(2 / 3)
    text = markdown_report({"checkpoint": "x.pt", "cells": 5, **report})
    assert "| source a | 2 |" in text and "| neutrophil | 3 | 0 | 0 | 0 |" in text


def test_macro_f1_averages_over_labelled_classes():
    matrix = np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    f1_a, f1_b = 2 * 1 * 0.75 / 1.75, 2 * (2 / 3) * 1 / (5 / 3)
    assert macro_f1(matrix) == pytest.approx((f1_a + f1_b) / 2)


def test_the_group_is_decided_before_the_member():
    vocabulary = list(default_type_vocabulary())
    probs = np.zeros((2, len(vocabulary)))
    seg, band, eos = (vocabulary.index(t) for t in ("segmented_neutrophil", "band_neutrophil", "eosinophil"))
    probs[0, [seg, band, eos]] = [0.3, 0.25, 0.45]  # neutrophils hold 0.55 in all
    probs[1, [seg, band, eos]] = [0.1, 0.1, 0.8]
    assert [vocabulary[i] for i in decide_types(probs, vocabulary)] == ["segmented_neutrophil", "eosinophil"]
