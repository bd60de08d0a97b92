"""Throughput of the cell model on this machine: batched inference, crop cutting, training steps.

    python -m smearscope.tools.bench_cells [--checkpoint best.pt] [--threads 2] [--batch 256]

Without a checkpoint a fresh model of ``--arch`` at ``--input`` pixels is timed (the speed
does not depend on the weights). Prints the best of ``--repeats`` runs per measurement, as
crops per wall-clock second and per CPU-second of this process (the latter is less
disturbed by other work on a shared machine), and the load average around the runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _best_rate(fn, items: int, repeats: int) -> tuple[float, float]:
    """(items per wall-clock second, items per CPU-second of this process), best of ``repeats``."""
    fn()  # warm-up
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return items / wall, items / max(cpu, 1e-9)


def _report(name: str, rates: tuple[float, float]) -> None:
    print(f"{name}: {rates[0]:.0f} crops/s ({rates[1]:.0f} crops per CPU-second)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="a cell model checkpoint (default: a fresh model)")
    parser.add_argument("--arch", default="cellnet_s")
    parser.add_argument("--input", type=int, default=128, help="input size of a fresh model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--crops", type=int, default=256, help="crops per timed inference run")
    parser.add_argument("--batch", type=int, default=64, help="inference batch size")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from smearscope.attributes.augment import AugmentConfig, augment_batch
    from smearscope.attributes.crops import crop_cells
    from smearscope.attributes.model import count_parameters, create_model, load_checkpoint
    from smearscope.attributes.predict import predict_crops

    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint) if args.checkpoint else create_model(args.arch, input_size=args.input).eval()
    size = model.config.input_size
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (args.crops, size, size, 3), dtype=np.uint8)
    print(f"model {model.config.arch}, input {size} px, {count_parameters(model) / 1e6:.2f} M parameters, "
          f"{args.threads} threads, inference batch {args.batch}")
    print(f"load average before: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    _report("inference", _best_rate(lambda: predict_crops(model, crops, batch_size=args.batch), args.crops, args.repeats))

    image = rng.integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    centres = rng.uniform(100, 1948, (args.crops, 2))
    boxes = np.concatenate([centres - 60, centres + 60], axis=1)
    cut = lambda: crop_cells(image, boxes, size, model.config.crop_um, 0.1)  # noqa: E731
    _report("cropping (0.1 um/px capture)", _best_rate(cut, args.crops, args.repeats))

    batch = 64
    cache = torch.from_numpy(rng.integers(0, 256, (batch, int(size * 1.25), int(size * 1.25), 3), dtype=np.uint8))
    generator = torch.Generator().manual_seed(0)
    _report("augmentation", _best_rate(lambda: augment_batch(cache, size, AugmentConfig(), generator), batch, args.repeats))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        outputs = model(augment_batch(cache, size, AugmentConfig(), generator)[0])
        loss = sum(v.logsumexp(dim=1).mean() for v in outputs.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    _report(f"training (augmentation + forward + backward, batch {batch})", _best_rate(step, batch, args.repeats))
    print(f"load average after: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
