"""Batch processing of captures: resumable, atomic per capture, failures listed and skipped.

Each capture gets its own output folder, written in a temporary folder and renamed into
place only when complete, so a killed run leaves either a whole result or none. A capture
whose folder holds a ``result.json`` for the same input file (size and modification time)
is skipped on a re-run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from smearscope.datasets.io import IMAGE_SUFFIXES, write_json_atomic

DONE_FILE = "result.json"
CAPTURE_SUFFIXES = IMAGE_SUFFIXES + (".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".svslide")


@dataclass
class BatchSummary:
    """What a batch run did: captures analysed, skipped as already done, and failed."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain data for JSON."""
        return {"done": self.done, "skipped": self.skipped, "failed": self.failed}


def collect_captures(inputs: list[str | Path]) -> list[Path]:
    """Capture files named directly or found (recursively) in folders, sorted, unique."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in CAPTURE_SUFFIXES)
        elif path.exists():
            found.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


def output_names(captures: list[Path]) -> dict[Path, str]:
    """A folder name per capture: its stem, plus a short path hash where stems collide."""
    stems: dict[str, int] = {}
    for capture in captures:
        stems[capture.stem] = stems.get(capture.stem, 0) + 1
    names = {}
    for capture in captures:
        name = capture.stem
        if stems[name] > 1:
            name += "-" + hashlib.sha1(str(capture).encode()).hexdigest()[:8]
        names[capture] = name
    return names


def input_signature(capture: Path) -> dict:
    """What identifies an input file for resuming: path, size and modification time."""
    stat = capture.stat()
    return {"capture": str(capture), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_done(folder: Path, capture: Path) -> bool:
    """True when ``folder`` holds a finished result for this very input file."""
    marker = folder / DONE_FILE
    if not marker.is_file():
        return False
    try:
        saved = json.loads(marker.read_text(encoding="utf-8")).get("input", {})
    except (json.JSONDecodeError, OSError):
        return False
    return saved == input_signature(capture)


def run_batch(
    captures: list[Path],
    out_dir: str | Path,
    analyze_one: Callable[[Path, Path], dict],
    progress: bool = True,
) -> BatchSummary:
    """Run ``analyze_one(capture, folder) -> result dict`` on each capture, resumably.

    ``analyze_one`` writes its files into ``folder`` (a fresh temporary folder) and returns
    the data stored in ``result.json``. A capture that raises is listed with a one-line
    reason and the batch goes on.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = BatchSummary()
    names = output_names(captures)
    bar = tqdm(captures, desc="captures", unit="capture", disable=not progress, file=sys.stderr)
    for capture in bar:
        final = out_dir / names[capture]
        if is_done(final, capture):
            summary.skipped.append(str(capture))
            continue
        work = Path(tempfile.mkdtemp(prefix=f".{names[capture]}.", suffix=".tmp", dir=out_dir))
        try:
            result = analyze_one(capture, work)
            write_json_atomic(work / DONE_FILE, {"input": input_signature(capture), **result})
            if final.exists():
                shutil.rmtree(final)
            os.replace(work, final)
            summary.done.append(str(capture))
        except Exception as exc:  # one bad capture must not stop the batch
            shutil.rmtree(work, ignore_errors=True)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            summary.failed[str(capture)] = reason if reason.startswith(str(capture)) else f"{capture}: {reason}"
            bar.write(f"failed: {summary.failed[str(capture)]}", file=sys.stderr)
    write_json_atomic(out_dir / "batch.json", summary.as_dict())
    return summary
