"""The multi-head cell network, in timm's shape: a factory, ``forward_features`` /
``forward_heads``, and a config saved inside every checkpoint.

The backbone is a compact stack of plain and inverted residual convolutions with GroupNorm
(no batch statistics, so no dependence on one lab's images), trained from scratch. The
model takes RGB in [0, 1], white-balances each crop to its own background and applies a
fixed normalisation. One linear head per
output: the cell type and every morphological attribute (``attributes.schema``).

A checkpoint is a plain dict ``{"format", "config", "state_dict", "metrics"}`` holding only
tensors, lists, dicts, strings and numbers, so ``torch.load(path, weights_only=True)``
reads it and the config alone rebuilds the network.
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from smearscope.attributes.schema import TYPE_HEAD, default_heads
from smearscope.datasets.io import write_bytes_atomic

CHECKPOINT_FORMAT = "smearscope-cells/1"

# Stage tables: (block kind, output channels, blocks, stride of the first block, expansion).
# "fused" blocks are plain 3x3 convolutions (cheap on CPUs at high resolution and few
# channels), "ir" blocks inverted residuals (1x1 expand, 3x3 depthwise, 1x1 project).
ARCHITECTURES: dict[str, dict] = {
    "cellnet_s": {
        "stem": 16,
        "stages": [("fused", 32, 1, 2, 1), ("fused", 48, 2, 2, 1), ("ir", 96, 3, 2, 4), ("ir", 144, 2, 1, 4)],
        "features": 576,
    },
    "cellnet_t": {
        "stem": 16,
        "stages": [("fused", 24, 1, 2, 1), ("fused", 32, 1, 2, 1), ("ir", 64, 2, 2, 4), ("ir", 128, 3, 1, 4)],
        "features": 512,
    },
    "cellnet_m": {
        "stem": 24,
        "stages": [("fused", 32, 1, 2, 1), ("fused", 64, 2, 2, 1), ("ir", 112, 3, 2, 4), ("ir", 176, 3, 1, 4)],
        "features": 704,
    },
    "cellnet_xs": {
        "stem": 8,
        "stages": [("fused", 16, 1, 2, 1), ("ir", 24, 1, 2, 2), ("ir", 32, 1, 2, 2)],
        "features": 64,
    },
}


@dataclass
class CellModelConfig:
    """Everything needed to rebuild a cell model and feed it the right crops."""

    arch: str = "cellnet_s"
    input_size: int = 128
    # Divide each crop by its own background colour (the mean of its brightest fifth, the
    # plasma between cells) so that lamp and white balance do not matter.
    white_balance: bool = True
    # Fixed normalisation applied inside the model to RGB in [0, 1] (not a data set's statistics).
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])
    heads: dict[str, list[str]] = field(default_factory=default_heads)
    # Crop side in micrometres around a cell's box centre, resampled to input_size.
    crop_um: float = 22.0
    # Crop side as a multiple of the box's longer side when a capture's scale is unknown.
    fallback_box_scale: float = 1.8
    dropout: float = 0.2
    # Heads that had labels in training (others are untrained and must not be read).
    trained_heads: list[str] = field(default_factory=list)
    # What the model was trained on: sources, counts, scales (plain data).
    train_data: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown cell model {self.arch!r}; known: {', '.join(ARCHITECTURES)}")
        if TYPE_HEAD not in self.heads:
            raise ValueError(f"the head table needs a {TYPE_HEAD!r} head")
        if self.input_size < 16 or self.input_size % 8:
            raise ValueError(f"input_size {self.input_size} must be a multiple of 8 and at least 16")
        if self.crop_um <= 0 or self.fallback_box_scale <= 0:
            raise ValueError("crop_um and fallback_box_scale must be positive")
        self.heads = {str(k): [str(v) for v in values] for k, values in self.heads.items()}

    @property
    def um_per_input_px(self) -> float:
        """Micrometres per pixel of the model's input."""
        return self.crop_um / self.input_size

    def to_dict(self) -> dict:
        """Plain data (lists, dicts, strings, numbers) for a checkpoint."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "CellModelConfig":
        """Rebuild from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"cell model config: unknown key(s) {', '.join(unknown)}")
        return cls(**data)


def white_balance(x: torch.Tensor, quantile: float = 0.8) -> torch.Tensor:
    """Divide each image ``(B, 3, H, W)`` by the mean colour of its brightest pixels (clamped to [0, 1]).

    The brightest pixels are found on a 4x4-pooled copy, which is cheaper and ignores noise.
    """
    pooled = F.avg_pool2d(x, 4, ceil_mode=True) if min(x.shape[2:]) >= 16 else x
    luminance = pooled.mean(dim=1).flatten(1)
    k = max(1, int(round(quantile * luminance.shape[1])))
    threshold = luminance.kthvalue(k, dim=1).values
    bright = (luminance >= threshold[:, None]).to(x.dtype).view(x.shape[0], 1, *pooled.shape[2:])
    background = (pooled * bright).sum(dim=(2, 3), keepdim=True) / bright.sum(dim=(2, 3), keepdim=True)
    return (x / background.clamp(min=0.05)).clamp(0.0, 1.0)


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 when each group keeps at least 4 channels, else fewer."""
    for groups in (8, 4, 2):
        if channels % groups == 0 and channels // groups >= 4:
            return groups
    return 1


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(_groups(channels), channels)


class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise, 1x1 project; GroupNorm after each; residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers += [nn.Conv2d(in_channels, hidden, 1, bias=False), _norm(hidden), nn.Hardswish()]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            _norm(hidden),
            nn.Hardswish(),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            _norm(out_channels),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class FusedBlock(nn.Module):
    """3x3 convolution, GroupNorm, Hardswish; residual when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), _norm(out_channels), nn.Hardswish()
        )
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.residual else y


class CellNet(nn.Module):
    """Backbone plus one linear head per output; ``forward`` returns ``{head: logits}``."""

    def __init__(self, config: CellModelConfig) -> None:
        super().__init__()
        self.config = config
        spec = ARCHITECTURES[config.arch]
        stem = spec["stem"]
        layers: list[nn.Module] = [nn.Conv2d(3, stem, 3, 2, 1, bias=False), _norm(stem), nn.Hardswish()]
        channels = stem
        for kind, out_channels, blocks, stride, expansion in spec["stages"]:
            for b in range(blocks):
                step = stride if b == 0 else 1
                if kind == "fused":
                    layers.append(FusedBlock(channels, out_channels, step))
                else:
                    layers.append(InvertedResidual(channels, out_channels, step, expansion))
                channels = out_channels
        features = spec["features"]
        layers += [nn.Conv2d(channels, features, 1, bias=False), _norm(features), nn.Hardswish()]
        self.backbone = nn.Sequential(*layers)
        self.num_features = features
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict({_key(name): nn.Linear(features, len(values)) for name, values in config.heads.items()})
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, InvertedResidual) and module.residual:
                nn.init.zeros_(module.block[-1].weight)  # each residual block starts as identity

    @property
    def head_names(self) -> list[str]:
        """Head names in config order (the type head first)."""
        return list(self.config.heads)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] ``(B, 3, H, W)`` -> the last feature map ``(B, C, h, w)``."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) batch, got shape {tuple(x.shape)}")
        if self.config.white_balance:
            x = white_balance(x)
        return self.backbone((x - self.mean) / self.std)

    def forward_heads(self, features: torch.Tensor, pre_logits: bool = False) -> dict[str, torch.Tensor] | torch.Tensor:
        """Pool a feature map and apply every head: ``{head: logits (B, K)}`` (or the pooled vector)."""
        pooled = features.mean(dim=(2, 3))
        if pre_logits:
            return pooled
        pooled = self.dropout(pooled)
        return {name: self.heads[_key(name)](pooled) for name in self.config.heads}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_heads(self.forward_features(x))


def _key(name: str) -> str:
    """A ModuleDict key for a head name (dots are not allowed in module names)."""
    return name.replace(".", "_")


def create_model(name: str = "cellnet_s", **kwargs) -> CellNet:
    """A fresh (randomly initialised) cell model; ``kwargs`` set :class:`CellModelConfig` fields."""
    return CellNet(CellModelConfig(arch=name, **kwargs))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def checkpoint_dict(model: CellNet, metrics: dict | None = None) -> dict:
    """The plain dict saved as a checkpoint (weights as float32 CPU tensors)."""
    state = {k: v.detach().to("cpu", torch.float32).clone() for k, v in model.state_dict().items()}
    return {"format": CHECKPOINT_FORMAT, "config": model.config.to_dict(), "state_dict": state, "metrics": metrics or {}}


def save_checkpoint(model: CellNet, path: str | Path, metrics: dict | None = None) -> Path:
    """Write a self-describing checkpoint atomically; ``metrics`` must be plain data."""
    buffer = io.BytesIO()
    torch.save(checkpoint_dict(model, metrics), buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict, read with ``weights_only=True``; one-line ``ValueError`` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"{path}: not a readable checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a smearscope cell model checkpoint (format {CHECKPOINT_FORMAT})")
    return data


def load_checkpoint(path: str | Path) -> CellNet:
    """Rebuild a model from its checkpoint, in eval mode."""
    data = read_checkpoint(path)
    try:
        model = CellNet(CellModelConfig.from_dict(data["config"]))
        model.load_state_dict(data["state_dict"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise ValueError(f"{path}: checkpoint does not match its config ({str(exc).splitlines()[0]})") from None
    return model.eval()
