"""Captures per second of the local engine and of the Ray engine with 1, 2, ... workers.

Run: ``python -m smearscope.tools.bench_engines [--captures 20] [--actors 1 2 4]``. Two jobs:
``light`` (read the capture, write a few statistics) and ``heavy`` (the same plus
single-threaded OpenCV filtering, a stand-in for model inference; its time per capture is
printed first). The Ray rows include starting the workers (each builds its job once) but
not starting Ray itself, which is timed on its own line; a heavy Ray row also gives its
rate net of start-up, estimated by subtracting the light run's time with the same workers.
Where more workers than CPUs are asked for, each reserves a fraction of a CPU.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from smearscope.datasets.io import read_image, write_json_atomic
from smearscope.tools.batch import collect_captures, run_batch

HEAVY_ROUNDS = 450  # Gaussian blurs of a 512x512 float image per capture


def light_job(capture: Path, folder: Path) -> dict:
    """Read a capture and write its per-channel mean and spread."""
    pixels = read_image(capture).reshape(-1, 3).astype(np.float64)
    write_json_atomic(folder / "stats.json", {"mean": pixels.mean(0).round(3), "std": pixels.std(0).round(3)})
    return {"pixels": len(pixels)}


def heavy_job(capture: Path, folder: Path) -> dict:
    """The light job plus CPU-bound filtering (a stand-in for model inference)."""
    import cv2

    work = cv2.resize(read_image(capture).astype(np.float32), (512, 512))
    for _ in range(HEAVY_ROUNDS):
        work = cv2.GaussianBlur(work, (9, 9), 2.0)
    write_json_atomic(folder / "blurred.json", {"mean": work.reshape(-1, 3).mean(0).round(3)})
    return light_job(capture, folder)


def make_job(kind: str) -> Callable[[Path, Path], dict]:
    """A job factory as the engines take it: one thread per worker, so workers map to cores."""
    import cv2

    cv2.setNumThreads(1)
    return {"light": light_job, "heavy": heavy_job}[kind]


def make_captures(folder: Path, count: int, size: int = 256) -> list[Path]:
    """``count`` random PNG captures of ``size`` x ``size`` pixels."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        cv2.imwrite(str(folder / f"capture{index:03d}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return collect_captures([folder])


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _row(engine: str, workers: str, job: str, count: int, seconds: float, light_seconds: float | None = None) -> None:
    """One result line; a heavy Ray row also shows its rate net of the light run's time (start-up)."""
    line = f"{engine:<6} {workers:>8} {job:<6} {seconds:8.2f} s {count / seconds:8.2f} captures/s"
    if light_seconds is not None and seconds > light_seconds:
        line += f"   net of start-up: {count / (seconds - light_seconds):6.2f} captures/s"
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=20, help="number of 256x256 captures (default 20)")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4], help="Ray worker counts (default 1 2 4)")
    args = parser.parse_args(argv)

    from smearscope.tools.engine_ray import ray_session, run_batch_ray

    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="smearscope-bench-") as temp:
        root = Path(temp)
        captures = make_captures(root / "in", args.captures)
        job = make_job("heavy")
        one = _timed(lambda: job(captures[0], Path(tempfile.mkdtemp(dir=root))))
        print(f"machine: {platform.machine()}, {cpus} CPUs, load average {os.getloadavg()[0]:.1f}; "
              f"heavy job alone: {one:.2f} s per capture")
        print(f"{'engine':<6} {'workers':>8} {'job':<6} {'time':>10} {'throughput':>19}")
        for kind in ("light", "heavy"):
            out = root / f"local-{kind}"
            seconds = _timed(lambda: run_batch(captures, out, make_job(kind), progress=False))
            _row("local", "1", kind, len(captures), seconds)
        start = time.perf_counter()
        with ray_session() as ray:
            print(f"ray start: {time.perf_counter() - start:.1f} s (Ray {ray.__version__})", flush=True)
            for actors in args.actors:
                per_actor = min(1.0, cpus / actors)
                light = None
                for kind in ("light", "heavy"):
                    out = root / f"ray-{actors}-{kind}"
                    seconds = _timed(lambda: run_batch_ray(
                        captures, out, functools.partial(make_job, kind), num_actors=actors,
                        num_cpus_per_actor=per_actor, progress=False))
                    _row("ray", f"{actors}", kind, len(captures), seconds, light)
                    light = seconds
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
