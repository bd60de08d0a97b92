"""Losses of the multi-head cell model: partial-label type loss, masked attribute losses.

Unknown labels give exactly no loss and no gradient: each head averages only over the cells
labelled for it (an all-False type mask, or attribute index -1, is unknown). A coarse type
label is a set of fine types; its loss is ``-log`` of the summed probability of the set.
Imbalance is handled with class-balanced weights (effective number of samples, Cui et al.
2019) and an optional focal factor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from smearscope.attributes.schema import NO_ATTRIBUTE_LABEL, TYPE_HEAD


def class_balanced_weights(counts: Sequence[int] | np.ndarray, beta: float = 0.999) -> np.ndarray:
    """Per-class weights ``(1 - beta) / (1 - beta^n)``, scaled so the average sample weighs 1.

    Classes without samples get weight 0 (they never occur as targets).
    """
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.zeros_like(counts)
    present = counts > 0
    if not present.any():
        return weights
    weights[present] = (1.0 - beta) / (1.0 - np.power(beta, counts[present]))
    weights *= counts.sum() / float((weights * counts).sum())
    return weights


def partial_label_nll(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Per-row ``-log(sum of the allowed classes' probabilities)``; rows must allow one class."""
    masked = logits.masked_fill(~allowed, float("-inf"))
    return torch.logsumexp(logits, dim=1) - torch.logsumexp(masked, dim=1)


def type_loss(logits: torch.Tensor, allowed: torch.Tensor, row_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean partial-label loss over the rows with a type label (0 when there are none)."""
    labelled = allowed.any(dim=1)
    if not labelled.any():
        return logits.sum() * 0.0
    losses = partial_label_nll(logits[labelled], allowed[labelled])
    if row_weights is None:
        return losses.mean()
    weights = row_weights[labelled]
    return (losses * weights).sum() / weights.sum().clamp(min=1e-12)


def attribute_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    class_weights: torch.Tensor | None = None,
    focal_gamma: float = 0.0,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Weighted mean cross-entropy over rows whose target is not ``NO_ATTRIBUTE_LABEL``."""
    labelled = targets != NO_ATTRIBUTE_LABEL
    if not labelled.any():
        return logits.sum() * 0.0
    logits, targets = logits[labelled], targets[labelled]
    losses = F.cross_entropy(logits, targets, reduction="none", label_smoothing=label_smoothing)
    if focal_gamma > 0:
        p_true = torch.softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
        losses = losses * (1.0 - p_true).pow(focal_gamma)
    if class_weights is None:
        return losses.mean()
    weights = class_weights[targets]
    return (losses * weights).sum() / weights.sum().clamp(min=1e-12)


class MultiHeadLoss(nn.Module):
    """Type loss plus the average of the attribute heads' losses.

    ``attribute_heads`` names the columns of the attribute target matrix, in order.
    ``active`` are the heads that are trained (default: all); the average divides by their
    fixed number, so a batch lacking one schema's labels is not rescaled.
    ``attribute_weights`` maps a head to per-value weights (missing or ``None``: plain mean).
    """

    def __init__(
        self,
        attribute_heads: Sequence[str],
        attribute_weights: Mapping[str, Sequence[float] | None] | None = None,
        type_weight: float = 1.0,
        attribute_weight: float = 1.0,
        focal_gamma: float = 0.0,
        label_smoothing: float = 0.0,
        active: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.attribute_heads = list(attribute_heads)
        self.active = [h for h in self.attribute_heads if active is None or h in set(active)]
        self.type_weight = type_weight
        self.attribute_weight = attribute_weight
        self.focal_gamma = focal_gamma
        self.label_smoothing = label_smoothing
        self.class_weights: dict[str, torch.Tensor | None] = {}
        for name in self.active:
            weights = (attribute_weights or {}).get(name)
            self.class_weights[name] = None if weights is None else torch.as_tensor(weights, dtype=torch.float32)

    def forward(
        self,
        outputs: Mapping[str, torch.Tensor],
        type_allowed: torch.Tensor,
        attribute_targets: torch.Tensor,
        type_row_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(total loss, per-head losses); ``attribute_targets`` columns follow ``attribute_heads``."""
        if attribute_targets.shape[1] != len(self.attribute_heads):
            raise ValueError(f"{attribute_targets.shape[1]} attribute target columns for {len(self.attribute_heads)} heads")
        parts = {TYPE_HEAD: type_loss(outputs[TYPE_HEAD], type_allowed, type_row_weights)}
        for j, name in enumerate(self.attribute_heads):
            if name in self.class_weights:
                parts[name] = attribute_loss(
                    outputs[name], attribute_targets[:, j], self.class_weights[name], self.focal_gamma, self.label_smoothing
                )
        total = self.type_weight * parts[TYPE_HEAD]
        if self.active:
            attributes = sum((parts[name] for name in self.active), torch.zeros(()))
            total = total + self.attribute_weight * attributes / len(self.active)
        return total, parts
