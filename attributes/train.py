"""Training of the multi-head cell model on mixed sources with partial labels.

``train_cells(config, work_dir)`` crops every labelled cell once into a cache, then trains
with in-batch augmentation, a weight average (EMA) and a warm-up + cosine schedule. Each
epoch ends with validation, ``last.pt`` (everything needed to resume) and, when the score
improves, ``best.pt`` (the small self-describing model checkpoint). The resolved config,
the metrics history and the loader issues are written next to them.
"""

from __future__ import annotations

import copy
import io
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from smearscope.attributes.augment import augment_batch, optical_density_moments
from smearscope.attributes.cellset import CellSet
from smearscope.attributes.evaluate import score_predictions
from smearscope.attributes.losses import MultiHeadLoss, class_balanced_weights
from smearscope.attributes.model import CellNet, create_model, save_checkpoint
from smearscope.attributes.predict import predict_crops
from smearscope.attributes.schema import (
    NO_ATTRIBUTE_LABEL,
    SIZE_ATTRIBUTES,
    TYPE_HEAD,
    attribute_heads,
    default_heads,
)
from smearscope.attributes.train_config import CellTrainConfig
from smearscope.attributes.training_data import label_counts, training_sets
from smearscope.datasets.config import run_defining, save_config, to_dict
from smearscope.datasets.io import write_bytes_atomic, write_json_atomic, write_text_atomic

SYNTHETIC_SOURCE = "phantom"
STATE_FILE = "last.pt"
BEST_FILE = "best.pt"


def _type_row_weights(cells: CellSet, beta: float) -> torch.Tensor:
    """Class-balanced weight of each cell's type label (coarse labels count as their own class)."""
    counts = Counter(cells.labels)
    names = sorted(counts)
    weights = class_balanced_weights([counts[n] for n in names], beta) if beta > 0 else np.ones(len(names))
    table = dict(zip(names, weights))
    return torch.tensor([table[label] for label in cells.labels], dtype=torch.float32)


def _loss(cells: CellSet, config: CellTrainConfig) -> MultiHeadLoss:
    optim = config.optim
    counts = label_counts(cells)
    weights = {}
    if optim.attribute_balance_beta > 0:
        weights = {h: class_balanced_weights(c, optim.attribute_balance_beta).tolist() for h, c in counts.items()}
    return MultiHeadLoss(
        attribute_heads(cells.heads),
        weights,
        type_weight=optim.type_weight,
        attribute_weight=optim.attribute_weight,
        focal_gamma=optim.focal_gamma,
        label_smoothing=optim.label_smoothing,
        active=[h for h, c in counts.items() if c.sum() > 0],
    )


def _sample_weights(cells: CellSet, source_weights: dict[str, float]) -> torch.Tensor | None:
    if not source_weights:
        return None
    return torch.tensor([float(source_weights.get(s, 1.0)) for s in cells.sources])


def _colour_references(cells: CellSet, input_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(which cells are synthetic, optical-density moments of the central input of every real cell)."""
    synthetic = torch.tensor([s == SYNTHETIC_SOURCE for s in cells.sources], dtype=torch.bool)
    real = torch.nonzero(~synthetic).flatten()
    side = cells.images.shape[1]
    start = (side - input_size) // 2
    centre = cells.images[real, start:start + input_size, start:start + input_size]
    return synthetic, torch.cat([optical_density_moments(chunk) for chunk in centre.split(512)]) if len(real) else torch.zeros(0, 2, 3)


def _schedule(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine down to 1 %."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def _optimizer(model: CellNet, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on convolution and linear weights only (not norms or biases)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr)


@torch.no_grad()
def _update_ema(ema: CellNet, model: CellNet, decay: float) -> None:
    for target, source in zip(ema.parameters(), model.parameters()):
        target.lerp_(source, 1.0 - decay)


def _summary(metrics: dict) -> dict:
    """The headline numbers of one validation set."""
    overall = metrics["overall"]
    t = overall[TYPE_HEAD]
    out = {"cells": overall["n"], "type_accuracy": t.get("accuracy"), "group_accuracy": t.get("group_accuracy")}
    for key in ("mean_attribute_accuracy", "mean_attribute_macro_f1"):
        if key in overall:
            out[key] = overall[key]
    return out


def _score(summaries: dict[str, dict]) -> float:
    """Model selection score: mean over validation sets of (type accuracy + mean attribute accuracy) / 2."""
    values = []
    for s in summaries.values():
        parts = [v for v in (s.get("type_accuracy"), s.get("mean_attribute_accuracy")) if v is not None]
        if parts:
            values.append(float(np.mean(parts)))
    return float(np.mean(values)) if values else float("nan")


def _save_state(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def _without_size_labels(targets: torch.Tensor, columns: list[int], zoom: torch.Tensor, tolerance: float) -> torch.Tensor:
    """Attribute targets with size labels set to unknown where the crop was zoomed beyond ``tolerance``."""
    zoomed = (zoom.log().abs() > math.log1p(tolerance))
    if not columns or not zoomed.any():
        return targets
    targets = targets.clone()
    rows = torch.nonzero(zoomed).flatten()
    targets[rows[:, None], torch.tensor(columns)[None, :]] = NO_ATTRIBUTE_LABEL
    return targets


def _epoch_order(cells: CellSet, count: int, weights: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    """``count`` cell indices: weighted draws with replacement, else shuffled passes."""
    if weights is not None:
        return torch.multinomial(weights, count, replacement=True, generator=generator)
    passes = math.ceil(count / len(cells))
    return torch.cat([torch.randperm(len(cells), generator=generator) for _ in range(passes)])[:count]


def _new_model(config: CellTrainConfig, heads: dict, train: CellSet, val: dict[str, CellSet]) -> CellNet:
    """A fresh model whose config records the heads that get labels and what it is trained on."""
    counts = label_counts(train)
    train_data = {
        "cells": len(train),
        "by_source": dict(Counter(train.sources)),
        "by_label": dict(Counter(train.labels)),
        "validation": {k: len(v) for k, v in val.items()},
        "um_per_px": dict(config.data.um_per_px),
        "cache_margin": config.data.cache_margin,
    }
    m = config.model
    return create_model(
        m.arch, input_size=m.input_size, crop_um=m.crop_um, fallback_box_scale=m.fallback_box_scale, dropout=m.dropout,
        heads=heads, trained_heads=[TYPE_HEAD] + [h for h, c in counts.items() if c.sum() > 0], train_data=train_data,
    )


def _validate(model: CellNet, val: dict[str, CellSet]) -> dict[str, dict]:
    return {name: _summary(score_predictions(predict_crops(model, cells.images), cells)) for name, cells in val.items()}


def train_cells(config: CellTrainConfig, work_dir: str | Path) -> Path:
    """Train (or resume) a cell model in ``work_dir``; return the path of its best checkpoint."""
    from tqdm import tqdm

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, config.threads))
    torch.manual_seed(config.seed)
    plain_config = to_dict(config)
    state_path, best_path = work_dir / STATE_FILE, work_dir / BEST_FILE
    state = torch.load(state_path, map_location="cpu", weights_only=True) if state_path.is_file() else None
    if state is not None and run_defining(state["config"]) != run_defining(plain_config):
        raise ValueError(f"{work_dir}: holds a run with another config; use a new work folder or delete {state_path}")
    save_config(config, work_dir / "config.yaml")

    started = time.perf_counter()
    cache_dir = Path(config.data.cache_dir) if config.data.cache_dir else work_dir / "cache"
    train, val, issues = training_sets(config.data, config.model, default_heads(), cache_dir, config.threads)
    write_text_atomic(work_dir / "load_issues.txt", "".join(f"{i}\n" for i in issues))
    model = _new_model(config, default_heads(), train, val)
    ema = copy.deepcopy(model).eval()
    optim = config.optim
    optimizer = _optimizer(model, optim.lr, optim.weight_decay)
    loss_fn = _loss(train, config)
    row_weights = _type_row_weights(train, optim.balance_beta)
    sample_weights = _sample_weights(train, config.data.source_weights)
    synthetic, references = _colour_references(train, config.model.input_size)
    size_columns = [j for j, h in enumerate(attribute_heads(train.heads)) if h in SIZE_ATTRIBUTES]
    steps = config.steps_per_epoch or max(1, len(train) // optim.batch_size)
    total, warmup = steps * optim.epochs, int(round(steps * optim.warmup_epochs))
    generator = torch.Generator().manual_seed(config.seed)
    history, best, start_epoch, elapsed = [], -math.inf, 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        history, best, start_epoch, elapsed = state["history"], state["best"], state["epoch"], state["seconds"]
        print(f"resuming {work_dir} after epoch {start_epoch}")
    print(f"training on {len(train)} cells ({model.config.train_data['by_source']}), validating on "
          f"{model.config.train_data['validation']}; data ready in {time.perf_counter() - started:.0f} s")

    for epoch in range(start_epoch, optim.epochs):
        t0 = time.perf_counter()
        model.train()
        order = _epoch_order(train, steps * optim.batch_size, sample_weights, generator)
        running, bar = [], tqdm(range(steps), desc=f"epoch {epoch + 1}/{optim.epochs}", disable=None, leave=False)
        for i in bar:
            step = epoch * steps + i
            for group in optimizer.param_groups:
                group["lr"] = optim.lr * _schedule(step, total, warmup)
            idx = order[i * optim.batch_size:(i + 1) * optim.batch_size]
            x, zoom = augment_batch(train.images[idx], config.model.input_size, config.augment, generator,
                                    synthetic[idx], references)
            targets = _without_size_labels(train.attribute_targets[idx], size_columns, zoom, config.augment.size_label_tolerance)
            loss, _ = loss_fn(model(x), train.type_allowed[idx], targets, row_weights[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
            optimizer.step()
            _update_ema(ema, model, min(optim.ema_decay, (1 + step) / (10 + step)) if optim.ema_decay > 0 else 0.0)
            running.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(running[-50:]):.3f}")
        seconds = time.perf_counter() - t0
        entry = {"epoch": epoch + 1, "loss": float(np.mean(running)), "lr": optimizer.param_groups[0]["lr"],
                 "train_seconds": round(seconds, 1), "cells_per_second": round(steps * optim.batch_size / seconds, 1)}
        last_epoch = epoch + 1 == optim.epochs
        if val and ((epoch + 1) % max(1, config.val_every) == 0 or last_epoch):
            entry["val"] = _validate(ema, val)
            entry["score"] = _score(entry["val"])
        history.append(entry)
        elapsed += time.perf_counter() - t0
        score = entry.get("score", -math.inf)
        if score > best or (last_epoch and not best_path.is_file()):
            best = max(best, score)
            save_checkpoint(ema, best_path, {"epoch": epoch + 1, "score": score, "val": entry.get("val", {})})
        _save_state(state_path, {
            "config": plain_config, "epoch": epoch + 1, "model": model.state_dict(), "ema": ema.state_dict(),
            "optimizer": optimizer.state_dict(), "generator": generator.get_state(), "history": history,
            "best": best, "seconds": elapsed,
        })
        write_json_atomic(work_dir / "metrics.json", {
            "history": history, "best_score": best, "train_seconds": round(elapsed, 1),
            "train_data": model.config.train_data, "threads": config.threads,
        })
        print(_epoch_line(entry), flush=True)
    return best_path


def _epoch_line(entry: dict) -> str:
    line = f"epoch {entry['epoch']}: loss {entry['loss']:.4f}, {entry['cells_per_second']:.0f} cells/s"
    for name, s in entry.get("val", {}).items():
        parts = [f"{k} {v:.4f}" for k, v in s.items() if isinstance(v, float)]
        line += f" | {name}: " + ", ".join(parts)
    return line
