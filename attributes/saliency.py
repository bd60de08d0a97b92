"""Grad-CAM (Selvaraju et al. 2017) for any head of the cell model: where in the crop the
evidence for a class lies, as a heatmap in [0, 1] at the crop's size."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from smearscope.attributes.augment import center_batch
from smearscope.attributes.model import CellNet
from smearscope.attributes.schema import TYPE_HEAD


def grad_cam(
    model: CellNet, crop: np.ndarray, head: str = TYPE_HEAD, class_index: int | None = None
) -> tuple[np.ndarray, int]:
    """Heatmap ``(S, S)`` in [0, 1] for one uint8 crop ``(S, S, 3)`` at the model's input size, and
    the class it explains (``class_index``, else the head's top class)."""
    if head not in model.config.heads:
        raise ValueError(f"unknown head {head!r}; known: {', '.join(model.config.heads)}")
    size = model.config.input_size
    if crop.shape != (size, size, 3) or crop.dtype != np.uint8:
        raise ValueError(f"expected a uint8 crop of shape ({size}, {size}, 3), got {crop.dtype} {crop.shape}")
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            features = model.forward_features(center_batch(torch.from_numpy(crop)[None], size))
            features.retain_grad()
            logits = model.forward_heads(features)[head]
            target = int(logits.argmax(dim=1)) if class_index is None else int(class_index)
            if not 0 <= target < logits.shape[1]:
                raise ValueError(f"class index {target} out of range for head {head!r} ({logits.shape[1]} classes)")
            logits[0, target].backward()
        weights = features.grad.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * features).sum(dim=1, keepdim=True)).detach()
        cam = F.interpolate(cam, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    top = float(cam.max())
    return (cam / top if top > 0 else cam).astype(np.float32), target
