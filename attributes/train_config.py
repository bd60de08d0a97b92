"""The cell model's training config: typed sections filled from ``configs/cells.yaml``.

Paths in the config are used as given: relative ones resolve against the current
directory (not the config file's folder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from smearscope.attributes.augment import AugmentConfig
from smearscope.datasets.config import load_config


@dataclass
class ModelSection:
    """Network and crop geometry (stored in every checkpoint)."""

    arch: str = "cellnet_s"
    input_size: int = 128
    crop_um: float = 22.0
    fallback_box_scale: float = 1.8
    dropout: float = 0.2


@dataclass
class DataSection:
    """Training and validation sources; an empty root leaves a source out."""

    wbcatt_root: str | None = None  # folder in the WBCAtt layout
    wbcatt_train_csv: str = "pbc_attr_v1_train.csv"
    wbcatt_val_csv: str | None = "pbc_attr_v1_val.csv"
    leukemiaattri_root: str | None = None  # train split for training, test split for validation
    leukemiaattri_domains: list[str] = field(default_factory=list)  # empty: every domain present
    phantom_cells: int = 0  # synthetic single cells (LeukemiaAttri classes and attributes)
    phantom_val_cells: int = 0
    phantom_domains: list[str] = field(default_factory=lambda: ["H_100X_C1", "L_100X_C2", "H_40X_C1", "L_40X_C2"])
    phantom_seed: int = 0
    phantom_types: list[str] = field(default_factory=list)  # unified types drawn in turn; empty: all 14 classes
    bccd_root: str | None = None  # typed BCCD cells added to training (leave empty to test on them)
    um_per_px: dict[str, float] = field(default_factory=lambda: {"wbcatt": 0.1})  # per source lacking a scale
    source_weights: dict[str, float] = field(default_factory=dict)  # sampling weight per source (default 1)
    cache_margin: float = 1.25  # cached crops are this much larger than the input, for augmentation
    cache_dir: str | None = None  # where cropped cells are cached (default: <work>/cache); runs may share one


@dataclass
class OptimSection:
    """Optimiser, schedule and loss settings."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    ema_decay: float = 0.998  # 0 switches the weight average off
    label_smoothing: float = 0.05
    focal_gamma: float = 0.0
    balance_beta: float = 0.999  # class-balanced weights of the type head; 0 switches them off
    attribute_balance_beta: float = 0.99  # the same for attribute heads (0.99: only values with < ~300 cells gain)
    type_weight: float = 1.0
    attribute_weight: float = 1.0
    grad_clip: float = 5.0


@dataclass
class CellTrainConfig:
    """Everything a cell-model training run needs."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    threads: int = 2
    val_every: int = 1
    steps_per_epoch: int = 0  # 0: one pass over the training cells


def load_cell_train_config(path: str | Path | None = None, overrides: list[str] | None = None) -> CellTrainConfig:
    """The training config from a YAML file (or the defaults) plus ``key=value`` overrides."""
    return load_config(CellTrainConfig, path, overrides)
