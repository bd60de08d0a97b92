"""Choosing where a batch of captures is analysed: here (``local``) or on a Ray cluster (``ray``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from smearscope.tools.batch import BatchSummary, run_batch
from smearscope.tools.capture_sources import resolve_inputs
from smearscope.tools.engine_ray import JobFactory, run_batch_ray

ENGINES = ("local", "ray")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"cannot be negative, got {text}")
    return value


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--engine``, ``--address``, ``--actors`` and ``--gpus-per-actor`` to ``parser``."""
    group = parser.add_argument_group("engine", "where the captures are analysed")
    group.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: one process on this machine (default); ray: a pool of Ray workers "
        "(needs pip install 'smearscope[ray]')",
    )
    group.add_argument(
        "--address",
        metavar="ADDR",
        default=None,
        help="Ray cluster to use, e.g. 'auto' (the cluster this machine belongs to) or "
        "'ray://host:10001'; default: start a local Ray with this machine's CPUs",
    )
    group.add_argument(
        "--actors",
        metavar="N",
        type=_positive_int,
        default=None,
        help="Ray workers, each holding the models once (default: as many as the cluster's "
        "CPUs, or GPUs with --gpus-per-actor, allow)",
    )
    group.add_argument(
        "--gpus-per-actor",
        metavar="X",
        type=_non_negative_float,
        default=0.0,
        help="GPUs each Ray worker reserves, fractions allowed (default: 0, CPU only)",
    )


def run_with_engine(
    args: argparse.Namespace,
    captures_or_manifest: str | Path | list[str | Path],
    out_dir: str | Path,
    job_factory: JobFactory,
    progress: bool = True,
) -> BatchSummary:
    """Analyse captures (files, folders, manifests; URLs with Ray) with the engine ``args`` chose.

    ``job_factory()`` returns ``analyze_one(capture, folder) -> dict``; the local engine
    calls it once, the Ray engine once per worker.
    """
    if args.engine == "ray":
        return run_batch_ray(
            captures_or_manifest,
            out_dir,
            job_factory,
            address=args.address,
            num_actors=args.actors,
            num_gpus_per_actor=args.gpus_per_actor,
            progress=progress,
        )
    ray_only = [flag for flag, value in (("--address", args.address), ("--actors", args.actors),
                                         ("--gpus-per-actor", args.gpus_per_actor)) if value]
    if ray_only:
        raise ValueError(f"{', '.join(ray_only)} only apply with --engine ray")
    captures = resolve_inputs(captures_or_manifest, allow_urls=False)
    return run_batch(captures, out_dir, job_factory(), progress=progress)
