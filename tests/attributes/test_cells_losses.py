"""Losses: unknown labels give exactly nothing, partial labels sum member probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from smearscope.attributes.losses import (
    MultiHeadLoss,
    attribute_loss,
    class_balanced_weights,
    partial_label_nll,
    type_loss,
)
from smearscope.attributes.schema import (
    NO_ATTRIBUTE_LABEL,
    default_type_vocabulary,
    encode_targets,
    type_label_mask,
)


def test_partial_label_loss_is_minus_log_of_member_probability_sum():
    vocabulary = list(default_type_vocabulary())
    logits = torch.randn(1, len(vocabulary), dtype=torch.float64)
    allowed = torch.from_numpy(type_label_mask("neutrophil", vocabulary))[None]
    probs = torch.softmax(logits, dim=1)[0]
    members = [vocabulary.index("segmented_neutrophil"), vocabulary.index("band_neutrophil")]
    expected = -math.log(float(probs[members].sum()))
    assert allowed.sum() == 2
    assert float(partial_label_nll(logits, allowed)[0]) == pytest.approx(expected, rel=1e-12)
    # a fine label reduces to plain cross-entropy
    fine = torch.from_numpy(type_label_mask("eosinophil", vocabulary))[None]
    target = torch.tensor([vocabulary.index("eosinophil")])
    assert float(type_loss(logits, fine)) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, target)), rel=1e-12)


def test_blast_label_allows_the_four_blast_types():
    vocabulary = list(default_type_vocabulary())
    mask = type_label_mask("blast", vocabulary)
    assert {vocabulary[i] for i in np.flatnonzero(mask)} == {"myeloblast", "monoblast", "promonocyte", "lymphoblast"}
    assert not type_label_mask("unknown", vocabulary).any()
    with pytest.raises(ValueError, match="no member"):
        type_label_mask("rbc", vocabulary)


def test_unknown_attribute_labels_give_no_loss_and_no_gradient():
    torch.manual_seed(0)
    logits = torch.randn(6, 3, requires_grad=True)
    targets = torch.tensor([0, NO_ATTRIBUTE_LABEL, 2, NO_ATTRIBUTE_LABEL, 1, 0])
    weights = torch.tensor([0.5, 2.0, 1.0])
    loss = attribute_loss(logits, targets, weights, focal_gamma=1.0, label_smoothing=0.1)
    loss.backward()
    unknown = targets == NO_ATTRIBUTE_LABEL
    assert torch.all(logits.grad[unknown] == 0)
    assert torch.all(logits.grad[~unknown].abs().sum(dim=1) > 0)
    # the loss equals the loss over the labelled rows alone, and ignores what unknown rows show
    alone = attribute_loss(logits.detach()[~unknown], targets[~unknown], weights, focal_gamma=1.0, label_smoothing=0.1)
    assert loss.item() == alone.item()
    changed = logits.detach().clone()
    changed[unknown] = torch.randn(int(unknown.sum()), 3) * 10
    assert attribute_loss(changed, targets, weights, focal_gamma=1.0, label_smoothing=0.1).item() == loss.item()


def test_unknown_type_rows_give_no_loss_and_no_gradient():
    logits = torch.randn(4, 5, requires_grad=True)
    allowed = torch.tensor([[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 1, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    loss = type_loss(logits, allowed, torch.tensor([1.0, 3.0, 2.0, 5.0]))
    loss.backward()
    assert torch.all(logits.grad[[1, 3]] == 0)
    alone = type_loss(logits.detach()[[0, 2]], allowed[[0, 2]], torch.tensor([1.0, 2.0]))
    assert loss.item() == alone.item()


def test_a_head_without_labels_in_the_batch_contributes_zero_with_a_graph():
    logits = torch.randn(3, 2, requires_grad=True)
    loss = attribute_loss(logits, torch.full((3,), NO_ATTRIBUTE_LABEL))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_multi_head_loss_changes_only_with_known_labels():
    heads = {"cell_type": ["a", "b", "c"], "h1": ["x", "y"], "h2": ["p", "q", "r"]}
    outputs = {k: torch.randn(4, len(v)) for k, v in heads.items()}
    allowed = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 0], [0, 0, 1]], dtype=torch.bool)
    targets = torch.tensor([[0, 2], [NO_ATTRIBUTE_LABEL, 1], [1, NO_ATTRIBUTE_LABEL], [NO_ATTRIBUTE_LABEL, NO_ATTRIBUTE_LABEL]])
    loss_fn = MultiHeadLoss(["h1", "h2"], {"h1": [1.0, 2.0], "h2": None})
    total, parts = loss_fn(outputs, allowed, targets)
    assert set(parts) == {"cell_type", "h1", "h2"}
    assert float(total) == pytest.approx(float(parts["cell_type"] + (parts["h1"] + parts["h2"]) / 2))
    outputs["h1"][[1, 3]] += 100.0  # rows with unknown h1 labels
    outputs["cell_type"][2] -= 50.0  # the row with an unknown type
    again, _ = loss_fn(outputs, allowed, targets)
    assert float(again) == float(total)


def test_inactive_heads_are_skipped_and_columns_stay_aligned():
    outputs = {"cell_type": torch.randn(2, 3), "h1": torch.randn(2, 2), "h2": torch.randn(2, 3)}
    allowed = torch.tensor([[1, 0, 0], [0, 1, 0]], dtype=torch.bool)
    targets = torch.tensor([[NO_ATTRIBUTE_LABEL, 2], [NO_ATTRIBUTE_LABEL, 0]])
    total, parts = MultiHeadLoss(["h1", "h2"], active=["h2"])(outputs, allowed, targets)
    assert set(parts) == {"cell_type", "h2"}
    expected = torch.nn.functional.cross_entropy(outputs["h2"], targets[:, 1])
    assert float(parts["h2"]) == pytest.approx(float(expected))
    assert float(total) == pytest.approx(float(parts["cell_type"] + parts["h2"]))
    with pytest.raises(ValueError, match="3 attribute target columns for 2 heads"):
        MultiHeadLoss(["h1", "h2"])(outputs, allowed, torch.zeros(2, 3, dtype=torch.long))


def test_class_balanced_weights_favour_rare_classes_and_average_one():
    counts = np.array([900, 90, 10, 0])
    weights = class_balanced_weights(counts, beta=0.999)
    assert weights[2] > weights[1] > weights[0] > 0 and weights[3] == 0
    assert float((weights * counts).sum() / counts.sum()) == pytest.approx(1.0)


def test_encode_targets_reads_unknown_and_rejects_illegal_values():
    heads = {"cell_type": list(default_type_vocabulary()), "wbcatt_cell_size": ["small", "big"]}
    masks, targets = encode_targets(["lymphocyte", "wbc"], [{"wbcatt_cell_size": "big"}, {}], heads)
    assert masks[0].sum() == 1 and masks[1].sum() == 16
    assert targets.tolist() == [[1], [NO_ATTRIBUTE_LABEL]]
    with pytest.raises(ValueError, match="wbcatt_cell_size: value 'huge'"):
        encode_targets(["lymphocyte"], [{"wbcatt_cell_size": "huge"}], heads)

