"""Build, train (interrupted, then resumed), predict and export with the network cut off.

Run in a fresh interpreter so that library imports happen under the guard too:
``python yolo_offline_run.py WORK REPORT_JSON``. Every attempt to reach a non-loopback
address and every pip run is recorded (and fails); the report holds them and the results.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import traceback
from pathlib import Path

ATTEMPTS: list[str] = []
PIP_RUNS: list[str] = []
CALLERS: list[str] = []
LOOPBACK_NAMES = ("localhost", "::1", "0.0.0.0")


def _is_loopback(host: object) -> bool:
    text = str(host)
    return text.startswith("127.") or text in LOOPBACK_NAMES


def record(what: str) -> None:
    """Remember an attempt and the code that made it."""
    ATTEMPTS.append(what)
    CALLERS.append("".join(traceback.format_stack(limit=40)[:-2]))


def install_guard() -> None:
    """Make every outside connection and every pip run fail, and remember it."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo, real_create_connection = socket.getaddrinfo, socket.create_connection

    def blocked(what: str) -> OSError:
        record(what)
        return OSError(f"network use blocked in this test: {what}")

    def connect(self, address):
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise blocked(f"connect {address}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if isinstance(address, tuple) and not _is_loopback(address[0]):
            raise blocked(f"connect_ex {address}")
        return real_connect_ex(self, address)

    def create_connection(address, *args, **kwargs):
        if not _is_loopback(address[0]):
            raise blocked(f"create_connection {address}")
        return real_create_connection(address, *args, **kwargs)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _is_loopback(host):
            record(f"getaddrinfo {host}")
            raise socket.gaierror(f"name lookup blocked in this test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    class GuardedPopen(subprocess.Popen):
        def __init__(self, args, *rest, **kwargs):
            text = " ".join(map(str, args)) if isinstance(args, (list, tuple)) else str(args)
            if "pip" in text and "install" in text:
                PIP_RUNS.append(text)
                raise OSError(f"pip blocked in this test: {text}")
            super().__init__(args, *rest, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.create_connection, socket.getaddrinfo = create_connection, getaddrinfo
    subprocess.Popen = GuardedPopen


def write_source(root: Path) -> list[int]:
    """A YOLO-layout source of 160 px fields with purple discs; returns discs per val image."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    per_val = []
    for split, count in (("train", 8), ("val", 4)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(count):
            image = np.full((160, 160, 3), (236, 200, 214), dtype=np.uint8)
            lines = []
            for _ in range(int(rng.integers(1, 4))):
                r = int(rng.integers(12, 20))
                cx, cy = (int(v) for v in rng.integers(r + 1, 160 - r - 1, 2))
                cv2.circle(image, (cx, cy), r, (110, 60, 150), -1)
                lines.append(f"0 {(cx + 0.5) / 160:.6f} {(cy + 0.5) / 160:.6f} {(2 * r + 1) / 160:.6f} {(2 * r + 1) / 160:.6f}")
            cv2.imwrite(str(root / "images" / split / f"f{i}.png"), image[..., ::-1])
            (root / "labels" / split / f"f{i}.txt").write_text("\n".join(lines) + "\n")
            if split == "val":
                per_val.append(len(lines))
    (root / "classes.txt").write_text("WBC\nRBC\nPlatelets\n")
    return per_val


class Interrupt(Exception):
    """Raised from a callback to stop training after its first epoch."""


def main(work: Path, report_path: Path) -> None:
    install_guard()
    try:
        socket.create_connection(("192.0.2.1", 80), timeout=1)  # the guard must catch this one
    except OSError:
        pass
    self_check = list(ATTEMPTS)
    ATTEMPTS.clear()
    CALLERS.clear()

    import numpy as np

    from smearscope.datasets.io import read_image
    from smearscope.detect.config import load_detector_config
    from smearscope.detect.yolo_predict import export_detector, load_predictor
    from smearscope.detect.yolo_train import train_detector

    source = work / "source"
    discs_per_val_image = write_source(source)
    overrides = [f"sources={{syn: {{format: yolo, path: {source}, taxonomy_source: txl, um_per_px: 0.3125}}}}",
                 "imgsz=160", "epochs=2", "batch=4", "workers=0", "augment.blur=0.25", "seed=1"]
    config = load_detector_config(None, overrides)

    def stop(trainer) -> None:
        raise Interrupt()

    try:
        train_detector(config, work / "run", callbacks={"on_fit_epoch_end": stop})
        interrupted = False
    except Interrupt:
        interrupted = True
    best = train_detector(config, work / "run")
    done = best.parents[1] / "train_done.json"
    done_mtime = done.stat().st_mtime_ns
    again = train_detector(config, work / "run")

    tiles = [read_image(p) for p in sorted((source / "images" / "val").glob("*.png"))]
    tiles.append(np.ascontiguousarray(tiles[0][:100, :130]))
    torch_out = load_predictor(best, conf=0.001)(tiles)
    onnx_path = export_detector(best, work / "export" / "detector.onnx")
    onnx_out = load_predictor(onnx_path, backend="onnx", conf=0.001)(tiles)

    report = {
        "self_check": self_check, "attempts": ATTEMPTS, "callers": CALLERS, "pip_runs": PIP_RUNS,
        "interrupted": interrupted, "best": str(best), "again": str(again),
        "retrained_on_third_call": done.stat().st_mtime_ns != done_mtime,
        "onnx": str(onnx_path), "discs_per_val_image": discs_per_val_image,
        "config_overrides": overrides,
        "tile_shapes": [list(t.shape) for t in tiles],
        "predictions": {name: [[b.tolist(), s.tolist(), c.tolist()] for b, s, c in out]
                        for name, out in (("torch", torch_out), ("onnx", onnx_out))},
    }
    report_path.write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
