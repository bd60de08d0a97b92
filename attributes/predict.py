"""Inference: class probabilities of every head for crops, or for the boxes of one image."""

from __future__ import annotations

import numpy as np
import torch

from smearscope.attributes.augment import center_batch
from smearscope.attributes.crops import CropResult, crop_cells
from smearscope.attributes.model import CellNet


@torch.inference_mode()
def predict_crops(model: CellNet, crops: np.ndarray | torch.Tensor, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Softmax probabilities ``{head: (N, K)}`` for uint8 crops ``(N, S, S, 3)``.

    Crops larger than the model's input (cached with a margin) are centre-cropped, which
    keeps their scale; smaller ones raise ``ValueError``.
    """
    images = torch.as_tensor(crops)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 crops (N, S, S, 3), got {images.dtype} {tuple(images.shape)}")
    was_training = model.training
    model.eval()
    size = model.config.input_size
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in model.head_names}
    for start in range(0, len(images), batch_size):
        logits = model(center_batch(images[start:start + batch_size], size))
        for name, value in logits.items():
            outputs[name].append(torch.softmax(value, dim=1).numpy())
    model.train(was_training)
    return {
        name: np.concatenate(parts) if parts else np.zeros((0, len(model.config.heads[name])), np.float32)
        for name, parts in outputs.items()
    }


def crop_for_model(model: CellNet, image: np.ndarray, boxes_xyxy: np.ndarray, um_per_px: float | None) -> CropResult:
    """Crops of ``boxes_xyxy`` as the model expects them (its crop size in micrometres)."""
    cfg = model.config
    return crop_cells(image, boxes_xyxy, cfg.input_size, cfg.crop_um, um_per_px, cfg.fallback_box_scale)


def predict_boxes(
    model: CellNet,
    image: np.ndarray,
    boxes_xyxy: np.ndarray,
    um_per_px: float | None,
    batch_size: int = 64,
) -> tuple[dict[str, np.ndarray], CropResult]:
    """Probabilities of every head for the usable boxes of one RGB image, and the crop result
    (``kept`` says which boxes the rows belong to; ``rejected`` why the others were not used)."""
    crops = crop_for_model(model, image, boxes_xyxy, um_per_px)
    return predict_crops(model, crops.crops, batch_size), crops
