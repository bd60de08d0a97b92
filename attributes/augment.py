"""Batched training augmentation on tensors: geometry, stain, optics and compression.

Crops arrive as a uint8 cache ``(B, S, S, 3)`` slightly larger than the model input (the
same micrometres per pixel), so rotation, scale jitter and translation resample from real
context. Colour changes model what differs between labs: stain uptake (jitter in the
Ruifrok-Johnston haematoxylin / eosin / DAB optical-density space), white balance
(background tint), lamp and camera (brightness, contrast, gamma, saturation), focus (blur)
and compression (8x8 block DCT quantisation as in JPEG), plus sensor noise. Synthetic cells
can first take the colour of a real one (optical-density moments of a random real crop), so
that colour alone never tells a synthetic cell from a real one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Stain vectors (rows: haematoxylin, eosin, DAB) in RGB optical density, Ruifrok & Johnston 2001.
RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64)
HED_FROM_RGB = torch.linalg.inv(RGB_FROM_HED)
# JPEG base quantisation tables (ITU-T T.81 Annex K) for luminance and chrominance.
_JPEG_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
_JPEG_CHROMA = [17, 18, 24, 47] + [99] * 4 + [18, 21, 26, 66] + [99] * 4 + [24, 26, 56] + [99] * 5 + [47, 66] + [99] * 38
_EPS = 1.0 / 256.0


@dataclass
class AugmentConfig:
    """Magnitudes of each augmentation (0 switches one off)."""

    scale_jitter: float = 0.3  # zoom log-uniform in [1/(1+s), 1+s]
    size_label_tolerance: float = 0.1  # beyond this zoom, size attributes count as unknown
    rotate: bool = True  # any angle
    flip: bool = True
    translate: float = 0.1  # fraction of the output side (boxes from detectors and annotators are off-centre)
    hed_scale: float = 0.5  # stain amount x (1 + U(-s, s)) per stain
    hed_shift: float = 0.05  # stain optical density + U(-s, s) per stain
    hed_hue: float = 0.15  # each stain's RGB absorption vector + U(-h, h) per channel (stain hue)
    tint: float = 0.08  # per-channel gain 1 + U(-t, t)
    brightness: float = 0.12
    contrast: float = 0.35
    gamma: float = 0.3  # exponent exp(U(-g, g))
    saturation: float = 0.6
    blur_prob: float = 0.5
    blur_sigma: float = 3.0  # largest Gaussian sigma in output pixels
    jpeg_prob: float = 0.3
    jpeg_quality_min: int = 20
    jpeg_quality_max: int = 90
    noise_std: float = 0.03
    reference_colour_prob: float = 0.5  # chance that a synthetic crop takes a real crop's colour moments


def _uniform(shape: tuple[int, ...], low: float, high: float, gen: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=gen) * (high - low) + low


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` in [0, 1]."""
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected crops of shape (B, H, W, 3), got {tuple(images.shape)}")
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def center_batch(images: torch.Tensor, out_size: int) -> torch.Tensor:
    """The central ``out_size`` square of cached crops, as float ``(B, 3, out, out)`` (no augmentation)."""
    side = images.shape[1]
    if side < out_size:
        raise ValueError(f"cached crops of {side} px are smaller than the input size {out_size}")
    start = (side - out_size) // 2
    return to_float(images[:, start:start + out_size, start:start + out_size])


def rgb_to_hed(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] ``(B, 3, H, W)`` -> stain optical densities (haematoxylin, eosin, DAB)."""
    od = -torch.log(rgb.clamp(min=_EPS))
    return torch.einsum("bchw,cd->bdhw", od, HED_FROM_RGB.to(rgb.dtype))


def hed_to_rgb(hed: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_hed` (clamped to [0, 1])."""
    od = torch.einsum("bdhw,dc->bchw", hed, RGB_FROM_HED.to(hed.dtype))
    return torch.exp(-od).clamp(0.0, 1.0)


def optical_density_moments(images: torch.Tensor) -> torch.Tensor:
    """Per-image, per-channel mean and standard deviation of optical density ``(B, 2, 3)``
    of uint8 crops ``(B, S, S, 3)``."""
    od = -torch.log(to_float(images).clamp(min=_EPS))
    return torch.stack([od.mean(dim=(2, 3)), od.std(dim=(2, 3))], dim=1)


def match_colour_moments(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Give float crops ``(B, 3, H, W)`` the optical-density moments ``reference`` ``(B, 2, 3)``
    (Reinhard-style transfer in optical density, where stains add linearly)."""
    od = -torch.log(x.clamp(min=_EPS))
    mean, std = od.mean(dim=(2, 3), keepdim=True), od.std(dim=(2, 3), keepdim=True).clamp(min=1e-3)
    od = (od - mean) / std * reference[:, 1, :, None, None] + reference[:, 0, :, None, None]
    return torch.exp(-od.clamp(min=0.0)).clamp(0.0, 1.0)


def geometric(
    images: torch.Tensor, out_size: int, cfg: AugmentConfig, gen: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate, flip, zoom and shift float crops ``(B, 3, S, S)`` into ``(B, 3, out, out)``;
    also return each image's zoom (above 1: the cell looks larger than it is)."""
    batch, side = images.shape[0], images.shape[-1]
    base = out_size / side
    zoom = torch.exp(_uniform((batch,), -math.log1p(cfg.scale_jitter), math.log1p(cfg.scale_jitter), gen))
    angle = _uniform((batch,), 0.0, 2 * math.pi, gen) if cfg.rotate else torch.zeros(batch)
    flip = torch.where(torch.rand(batch, generator=gen) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(batch)
    reach = base / zoom
    cos, sin = torch.cos(angle) * reach, torch.sin(angle) * reach
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * flip, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * flip, cos
    theta[:, :, 2] = _uniform((batch, 2), -cfg.translate, cfg.translate, gen) * base
    grid = F.affine_grid(theta, [batch, 3, out_size, out_size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False), zoom


def stain_jitter(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None) -> torch.Tensor:
    """Scale, shift and recolour each stain independently per image.

    Stain amounts are read with the Ruifrok-Johnston vectors and written back with vectors
    perturbed by ``hed_hue`` (a stain of another hue). All of it is linear in optical
    density, so it folds into one 3x3 matrix and offset per image:
    ``od' = od @ (HED_FROM_RGB diag(scale) rgb_from_hed') + shift @ rgb_from_hed'``.
    """
    batch, _, height, width = x.shape
    scale = 1.0 + _uniform((batch, 3), -cfg.hed_scale, cfg.hed_scale, gen)
    shift = _uniform((batch, 1, 3), -cfg.hed_shift, cfg.hed_shift, gen)
    to_hed = HED_FROM_RGB.float()
    to_rgb = (RGB_FROM_HED.float()[None] + _uniform((batch, 3, 3), -cfg.hed_hue, cfg.hed_hue, gen)).clamp(min=0.0)
    matrix = to_hed[None] @ (scale[:, :, None] * to_rgb)
    od = -torch.log(x.clamp(min=_EPS)).permute(0, 2, 3, 1).reshape(batch, -1, 3)
    od = torch.baddbmm(shift @ to_rgb, od, matrix)
    return torch.exp(-od).clamp(0.0, 1.0).view(batch, height, width, 3).permute(0, 3, 1, 2)


def photometric(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None) -> torch.Tensor:
    """Tint, brightness, contrast (about the image mean), saturation and gamma, per image."""
    batch = x.shape[0]
    tint = 1.0 + _uniform((batch, 3, 1, 1), -cfg.tint, cfg.tint, gen)
    brightness = _uniform((batch, 1, 1, 1), -cfg.brightness, cfg.brightness, gen)
    contrast = 1.0 + _uniform((batch, 1, 1, 1), -cfg.contrast, cfg.contrast, gen)
    mean = (x.mean(dim=(2, 3), keepdim=True) * tint).mean(dim=1, keepdim=True) + brightness
    x = torch.addcmul((brightness - mean) * contrast + mean, x, tint * contrast)
    grey = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    saturation = 1.0 + _uniform((batch, 1, 1, 1), -cfg.saturation, cfg.saturation, gen)
    x = torch.addcmul(grey * (1.0 - saturation), x, saturation)
    gamma = torch.exp(_uniform((batch, 1, 1, 1), -cfg.gamma, cfg.gamma, gen))
    return x.clamp_(0.0, 1.0).pow_(gamma)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image with its own Gaussian ``sigma`` (pixels)."""
    batch, channels, height, width = x.shape
    radius = max(1, int(math.ceil(2.5 * float(sigma.max()))))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (offsets[None, :] / sigma.clamp(min=1e-3)[:, None]) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    kernel = kernel.repeat_interleave(channels, dim=0)
    flat = F.pad(x.reshape(1, batch * channels, height, width), (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(flat, kernel.view(-1, 1, 1, 2 * radius + 1), groups=batch * channels)
    flat = F.conv2d(flat, kernel.view(-1, 1, 2 * radius + 1, 1), groups=batch * channels)
    return flat.view(batch, channels, height, width)


def _dct_basis() -> torch.Tensor:
    """The 64 orthonormal 8x8 DCT-II basis images, one per row ``(64, 64)``."""
    k = torch.arange(8, dtype=torch.float32)
    basis = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / 16) * math.sqrt(2.0 / 8)
    basis[0] /= math.sqrt(2.0)
    return (basis[:, None, :, None] * basis[None, :, None, :]).reshape(64, 64)


def _quant_tables(quality: torch.Tensor) -> torch.Tensor:
    """Per-image quantisation steps ``(B, 3, 1, 64)`` (Y, Cb, Cr) for JPEG qualities 1-100."""
    quality = quality.clamp(1, 100).float()
    scale = torch.where(quality < 50, 5000.0 / quality, 200.0 - 2.0 * quality)
    base = torch.tensor([_JPEG_LUMA, _JPEG_CHROMA, _JPEG_CHROMA], dtype=torch.float32)
    tables = torch.floor((base[None] * scale[:, None, None] + 50.0) / 100.0).clamp(min=1.0)
    return tables.view(-1, 3, 1, 64)


def jpeg_like(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Quantise 8x8 block DCT coefficients in YCbCr as JPEG does at ``quality`` (per image)."""
    batch, _, height, width = x.shape
    pad_h, pad_w = (-height) % 8, (-width) % 8
    rgb = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate") * 255.0
    to_ycc = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    ycc = torch.einsum("bchw,dc->bdhw", rgb, to_ycc) - torch.tensor([128.0, 0.0, 0.0]).view(1, 3, 1, 1)
    h8, w8 = ycc.shape[2] // 8, ycc.shape[3] // 8
    blocks = ycc.view(batch, 3, h8, 8, w8, 8).permute(0, 1, 2, 4, 3, 5).reshape(batch, 3, h8 * w8, 64)
    basis = _dct_basis()
    steps = _quant_tables(quality)
    coeffs = torch.round((blocks @ basis.T) / steps) * steps
    blocks = (coeffs @ basis).view(batch, 3, h8, w8, 8, 8).permute(0, 1, 2, 4, 3, 5)
    ycc = blocks.reshape(batch, 3, h8 * 8, w8 * 8) + torch.tensor([128.0, 0.0, 0.0]).view(1, 3, 1, 1)
    rgb = torch.einsum("bchw,dc->bdhw", ycc, torch.linalg.inv(to_ycc))
    return (rgb / 255.0)[:, :, :height, :width].clamp(0.0, 1.0)


def augment_batch(
    images: torch.Tensor,
    out_size: int,
    cfg: AugmentConfig,
    generator: torch.Generator | None = None,
    synthetic: torch.Tensor | None = None,
    references: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment cached uint8 crops ``(B, S, S, 3)`` into float model inputs ``(B, 3, out, out)``.

    ``synthetic`` (bool ``(B,)``) marks crops that may take the colour moments of a random
    row of ``references`` (``(R, 2, 3)`` from :func:`optical_density_moments` of real crops).
    Also returns each image's zoom: a size label no longer holds for a strongly zoomed cell.
    """
    x, zoom = geometric(to_float(images), out_size, cfg, generator)
    batch = x.shape[0]
    if synthetic is not None and references is not None and len(references) and cfg.reference_colour_prob > 0:
        chosen = torch.nonzero(synthetic & (torch.rand(batch, generator=generator) < cfg.reference_colour_prob)).flatten()
        if len(chosen):
            picks = torch.randint(len(references), (len(chosen),), generator=generator)
            x[chosen] = match_colour_moments(x[chosen], references[picks])
    if cfg.hed_scale or cfg.hed_shift or cfg.hed_hue:
        x = stain_jitter(x, cfg, generator)
    x = photometric(x, cfg, generator)
    if cfg.blur_prob > 0 and cfg.blur_sigma > 0:
        chosen = torch.nonzero(torch.rand(batch, generator=generator) < cfg.blur_prob).flatten()
        if len(chosen):
            x[chosen] = gaussian_blur(x[chosen], _uniform((len(chosen),), 0.3, cfg.blur_sigma, generator))
    if cfg.jpeg_prob > 0:
        chosen = torch.nonzero(torch.rand(batch, generator=generator) < cfg.jpeg_prob).flatten()
        if len(chosen):
            quality = torch.randint(cfg.jpeg_quality_min, cfg.jpeg_quality_max + 1, (len(chosen),), generator=generator)
            x[chosen] = jpeg_like(x[chosen], quality)
    if cfg.noise_std > 0:
        level = _uniform((batch, 1, 1, 1), 0.0, cfg.noise_std, generator)
        x = x + torch.randn(x.shape, generator=generator) * level
    return x.clamp(0.0, 1.0), zoom
