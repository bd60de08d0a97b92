"""Train a YOLO WBC detector from scratch on the configured sources, then score it.

Layout of a work folder::

    WORK/dataset/                 tiles at the training scale (rebuilt only when inputs change)
    WORK/<generated sources>/     e.g. phantom/
    WORK/runs/<name>/weights/     best.pt, last.pt, their .json metadata, detector.yaml, data_spec.json
    WORK/runs/<name>/eval/        ap50.json, ap50.md (AP50 per class, per source and per domain)

A run is resumable: started again with the same configuration, it continues from
``last.pt`` (ultralytics ``resume``) or, when finished, only re-scores. A different
configuration in the same work folder is refused rather than mixed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from smearscope.datasets.config import run_defining, save_config, to_dict
from smearscope.datasets.io import write_json_atomic, write_text_atomic
from smearscope.detect.config import DetectorConfig, load_detector_config
from smearscope.detect.training_data import TrainingData, collect_training_data
from smearscope.detect.yolo_dataset import LAYOUT_VERSION, PreparedDataset, build_yolo_dataset, slug
from smearscope.detect.yolo_env import import_yolo, use_threads
from smearscope.detect.yolo_meta import DetectorMetadata, save_detector_metadata

LOG = logging.getLogger("smearscope.detect")
DONE = "train_done.json"
AP50_NOTE = ("AP50: ultralytics detection AP at IoU 0.5 (101-point interpolated precision-recall, "
             "all predictions down to conf 0.001), on validation tiles at the training um_per_px")


def _dataset_key(config: DetectorConfig, data: TrainingData) -> str:
    """A digest of everything the dataset folder depends on."""
    inputs = {
        "spec": data.spec,
        "records": [[p.name, p.role, p.repeat, [r.path for r in p.records], p.um_per_px] for p in data.parts],
        "imgsz": config.imgsz, "um_per_px": config.um_per_px, "class_mode": config.class_mode,
        "artifact_types": config.artifact_types, "blur": config.augment.blur, "seed": config.seed,
        "layout": LAYOUT_VERSION,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def prepare_dataset(config: DetectorConfig, data: TrainingData, out_dir: Path) -> PreparedDataset:
    """The dataset folder for ``data``: reused when built from the same inputs, else rebuilt."""
    key = _dataset_key(config, data)
    if (out_dir / "manifest.json").is_file():
        existing = PreparedDataset.load(out_dir)
        if existing.key == key:
            return existing
    LOG.info("building the training dataset in %s", out_dir)
    return build_yolo_dataset(
        data.parts, out_dir, imgsz=config.imgsz, um_per_px=config.um_per_px, class_mode=config.class_mode,
        artifact_types=config.artifact_types, blur=config.augment.blur, seed=config.seed, key=key,
    )


def _check_same_run(config: DetectorConfig, run_dir: Path) -> None:
    """Refuse to continue a run in ``run_dir`` that was made with another configuration."""
    saved = run_dir / "detector.yaml"
    if saved.is_file() and run_defining(to_dict(load_detector_config(saved))) != run_defining(to_dict(config)):
        raise ValueError(f"{run_dir}: holds a run with a different configuration ({saved}); "
                         "use another --work folder or name=...")


def _callbacks(threads: int, threads_seen: list[int]) -> dict:
    """ultralytics callbacks: set the thread count, remember it each epoch, log each epoch."""
    import torch

    def on_train_start(trainer) -> None:
        use_threads(threads)  # ultralytics' device set-up leaves torch one thread

    def on_train_epoch_start(trainer) -> None:
        threads_seen.append(torch.get_num_threads())

    def on_fit_epoch_end(trainer) -> None:
        metrics = {k: round(float(v), 4) for k, v in (trainer.metrics or {}).items() if "mAP50" in k}
        done = trainer.epoch + 1
        LOG.info("%s %s", f"epoch {done}/{trainer.epochs}" if done <= trainer.epochs else "best.pt", metrics)

    return {"on_train_start": on_train_start, "on_train_epoch_start": on_train_epoch_start,
            "on_fit_epoch_end": on_fit_epoch_end}


def _run_ultralytics(config: DetectorConfig, prepared: PreparedDataset, run_dir: Path,
                     callbacks: dict[str, Callable] | None) -> dict:
    """Train (or resume) with ultralytics; returns what it saw (threads, time)."""
    YOLO = import_yolo()

    last = run_dir / "weights" / "last.pt"
    resume = last.is_file()
    try:
        model = YOLO(str(last) if resume else config.model, task="detect")
    except FileNotFoundError as exc:
        raise ValueError(f"model: {config.model!r} not found ({exc})") from None
    threads_seen: list[int] = []
    for event, callback in [*_callbacks(config.threads, threads_seen).items(), *(callbacks or {}).items()]:
        model.add_callback(event, callback)
    args = dict(
        data=str(prepared.data_yaml), imgsz=config.imgsz, epochs=config.epochs, batch=config.batch,
        patience=config.patience, workers=config.workers, seed=config.seed, device=config.device,
        nbs=config.nominal_batch, warmup_epochs=config.warmup_epochs,
        **({"time": config.time_hours} if config.time_hours else {}),
        project=str(run_dir.parent), name=run_dir.name, exist_ok=True, pretrained=False, amp=False,
        plots=config.plots, verbose=False, cache=False, **config.augment.ultralytics_args(),
    )
    started = time.time()
    if resume:
        LOG.info("resuming from %s", last)
        model.train(resume=str(last), **args)
    else:
        model.train(**args)
    return {"resumed": resume, "seconds": round(time.time() - started, 1), "torch_threads": threads_seen}


def train_detector(config: DetectorConfig, work_dir: str | Path,
                   callbacks: dict[str, Callable] | None = None) -> Path:
    """Train a detector as ``config`` says inside ``work_dir``; return the best weights.

    Also writes the resolved config, the data spec and the weights' metadata beside the
    weights, and AP50 per source and per domain under ``runs/<name>/eval``. ``callbacks``
    maps ultralytics trainer events (e.g. ``on_fit_epoch_end``) to extra functions of the
    trainer, for progress reports or to stop early.
    """
    work_dir = Path(work_dir).resolve()
    run_dir = work_dir / "runs" / slug(config.name)
    weights_dir = run_dir / "weights"
    best = weights_dir / "best.pt"
    _check_same_run(config, run_dir)
    data = collect_training_data(config, work_dir)
    for issue in data.issues:
        LOG.warning("skipped %s", issue)
    prepared = prepare_dataset(config, data, work_dir / "dataset")
    save_config(config, run_dir / "detector.yaml")
    if not ((run_dir / DONE).is_file() and best.is_file()):
        info = _run_ultralytics(config, prepared, run_dir, callbacks)
        if not best.is_file():
            raise ValueError(f"{run_dir}: training ended without {best.name}")
        write_json_atomic(run_dir / DONE, info)
    metadata = DetectorMetadata(
        class_names=list(prepared.class_names), imgsz=config.imgsz, um_per_px=config.um_per_px,
        class_mode=config.class_mode, model=config.model,
        sources=sorted({p.name for p in data.parts if p.role == "train" and p.records}),
    )
    for weights in (best, weights_dir / "last.pt"):
        if weights.is_file():
            save_detector_metadata(metadata, weights)
    save_config(config, weights_dir / "detector.yaml")
    write_json_atomic(weights_dir / "data_spec.json", {
        "um_per_px": config.um_per_px, "imgsz": config.imgsz, "class_names": prepared.class_names,
        "sources": data.spec, "tiles": prepared.counts, "issues": [str(i) for i in data.issues + prepared.issues],
    })
    evaluate_detector(best, prepared, run_dir / "eval", batch=config.batch, workers=config.workers,
                      threads=config.threads)
    return best


def evaluate_detector(weights: str | Path, prepared: PreparedDataset, out_dir: str | Path,
                      batch: int = 16, workers: int = 0, threads: int = 0) -> dict:
    """AP50 per class on every validation subset of ``prepared``; writes ap50.json and ap50.md."""
    YOLO = import_yolo()
    out_dir = Path(out_dir)
    model = YOLO(str(weights), task="detect")
    model.add_callback("on_val_start", lambda validator: use_threads(threads))
    rows: dict[str, dict] = {}
    for key, data_yaml in sorted(prepared.subsets.items()):
        metrics = model.val(
            data=data_yaml, imgsz=prepared.imgsz, batch=batch, workers=workers, split="val", device="cpu",
            project=str(out_dir.resolve() / "ultralytics"), name=slug(key.replace(":", "-")), exist_ok=True,
            plots=False, verbose=False, save_json=False,
        )
        per_class = {row["Class"]: row for row in metrics.summary()}
        members = prepared.root / "subsets" / f"{slug(key.replace(':', '-'))}.txt"
        rows[key] = {
            "tiles": len(members.read_text(encoding="utf-8").split()),
            **{name: {"instances": int(per_class[name]["Instances"]) if name in per_class else 0,
                      "ap50": float(per_class[name]["mAP50"]) if name in per_class else None,
                      "ap50_95": float(per_class[name]["mAP50-95"]) if name in per_class else None}
               for name in prepared.class_names},
        }
    report = {"weights": str(weights), "um_per_px": prepared.um_per_px, "imgsz": prepared.imgsz,
              "metric": AP50_NOTE, "subsets": rows}
    write_json_atomic(out_dir / "ap50.json", report)
    write_text_atomic(out_dir / "ap50.md", ap50_table(report, prepared.class_names))
    return report


def ap50_table(report: dict, class_names: list[str]) -> str:
    """A markdown table: one row per validation subset, AP50 and instances per class."""
    header = "| subset | tiles | " + " | ".join(f"{c} AP50 | {c} instances" for c in class_names) + " |"
    lines = [header, "|" + "---|" * (2 + 2 * len(class_names))]
    for key, row in report["subsets"].items():
        cells = []
        for c in class_names:
            ap = row[c]["ap50"]
            cells += ["n/a" if ap is None else f"{ap:.3f}", str(row[c]["instances"])]
        lines.append(f"| {key} | {row['tiles']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{report['metric']}; weights {report['weights']}\n"

