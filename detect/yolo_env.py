"""Import ultralytics offline, with its experiment-tracking integrations switched off."""

from __future__ import annotations

import os
import sys

INTEGRATIONS = ("clearml", "comet", "dvc", "hub", "mlflow", "neptune", "raytune", "tensorboard", "wandb")


def import_yolo() -> type:
    """``ultralytics.YOLO``, after ``prepare_ultralytics()``; integrations (Ray Tune, MLflow,
    W&B, ...) are turned off in smearscope's own ultralytics settings so that none of them
    is imported, starts a session or reaches a server during training. Unless the user set
    it, ``OMP_WAIT_POLICY=PASSIVE`` is set when torch is not imported yet."""
    from smearscope.datasets.runtime import prepare_ultralytics

    if "torch" not in sys.modules and not os.environ.get("OMP_WAIT_POLICY"):
        # Idle OpenMP threads sleep instead of spinning: on a machine whose cores are busy
        # with other work, two spinning threads made training 4x slower than one thread.
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    prepare_ultralytics()
    from ultralytics import YOLO, settings

    enabled = {name: False for name in INTEGRATIONS if settings.get(name)}
    if enabled:
        settings.update(enabled)
    return YOLO


def use_threads(threads: int = 0) -> int:
    """Give torch ``threads`` intra-op threads (0: every core); return the count in use.

    ultralytics leaves torch one thread on the CPU; every core was about 1.7x faster.
    """
    import torch

    from smearscope.datasets.runtime import set_torch_threads

    if threads < 0:
        raise ValueError(f"threads: must not be negative, got {threads}")
    if threads:
        torch.set_num_threads(threads)
    else:
        set_torch_threads()
    return torch.get_num_threads()
