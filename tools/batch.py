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
from pathlib import Path, PurePosixPath
from typing import Callable
from urllib.parse import urlsplit

from smearscope.datasets.io import IMAGE_SUFFIXES, write_json_atomic
from smearscope.detect.capture import OPENSLIDE_SUFFIXES

DONE_FILE = "result.json"
CAPTURE_SUFFIXES = IMAGE_SUFFIXES + OPENSLIDE_SUFFIXES


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
            found.extend(p for p in sorted(path.rglob("*"))
                         if p.is_file() and p.suffix.lower() in CAPTURE_SUFFIXES and not _is_output(p, path))
        elif path.exists():
            found.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return unique


def capture_stem(capture: Path | str) -> str:
    """A capture's file stem; a URL string (``s3://bucket/a.tif``) gives that of its path."""
    if isinstance(capture, Path):
        return capture.stem
    return PurePosixPath(urlsplit(capture).path).stem


def _is_output(path: Path, root: Path) -> bool:
    """True for files inside hidden folders or smearscope output folders under ``root``."""
    for folder in path.relative_to(root).parents:
        if folder.name.startswith(".") or (root / folder / DONE_FILE).is_file() or (root / folder / "batch.json").is_file():
            return True
    return False


def output_names(captures: list[Path | str]) -> dict[Path | str, str]:
    """A folder name per capture (path or URL): its stem, plus a short hash where stems collide."""
    stems: dict[str, int] = {}
    for capture in captures:
        stems[capture_stem(capture)] = stems.get(capture_stem(capture), 0) + 1
    names = {}
    for capture in captures:
        name = capture_stem(capture)
        if stems[name] > 1:
            name += "-" + _short_hash(capture)
        names[capture] = name
    return names


def output_folder(out_dir: Path, capture: Path | str, name: str) -> Path:
    """Where ``capture``'s results go: ``out_dir/name`` (``name`` from ``output_names``), unless
    that folder holds another capture's result (from an earlier run into ``out_dir``); then
    ``name`` plus a short hash of the capture, so that no capture replaces another's result."""
    final = out_dir / name
    saved = saved_signature(final)
    if saved is not None and saved.get("capture") != str(capture):
        final = out_dir / f"{name}-{_short_hash(capture)}"
    return final


def _short_hash(capture: Path | str) -> str:
    return hashlib.sha1(str(capture).encode()).hexdigest()[:8]


def input_signature(capture: Path) -> dict:
    """What identifies an input file for resuming: path, size and modification time."""
    stat = capture.stat()
    return {"capture": str(capture), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def saved_signature(folder: Path) -> dict | None:
    """The input signature stored in ``folder``'s ``result.json``; None when there is none."""
    marker = folder / DONE_FILE
    if not marker.is_file():
        return None
    try:
        saved = json.loads(marker.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, OSError):
        return None
    return saved.get("input") if isinstance(saved, dict) else None


def is_done(folder: Path, capture: Path) -> bool:
    """True when ``folder`` holds a finished result for this very input file."""
    return saved_signature(folder) == input_signature(capture)


def analyze_into(
    capture: Path,
    final: Path,
    analyze_one: Callable[[Path, Path], dict],
    signature: dict | None = None,
) -> None:
    """Analyse one capture into the folder ``final``, all or nothing.

    ``analyze_one`` fills a fresh temporary folder beside ``final``; ``result.json`` (the
    input's ``signature``, by default ``input_signature(capture)``, plus the returned data)
    is written last and the folder renamed into place. On any error the temporary folder
    is removed and the error raised.
    """
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        result = analyze_one(capture, work)
        write_json_atomic(work / DONE_FILE, {"input": signature or input_signature(capture), **result})
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def failure_reason(capture: Path | str, exc: BaseException) -> str:
    """One line naming the capture and what went wrong."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return reason if reason.startswith(str(capture)) else f"{capture}: {reason}"


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
        try:
            final = output_folder(out_dir, capture, names[capture])
            if is_done(final, capture):
                summary.skipped.append(str(capture))
                continue
            analyze_into(capture, final, analyze_one)
            summary.done.append(str(capture))
        except Exception as exc:  # one bad capture must not stop the batch
            summary.failed[str(capture)] = failure_reason(capture, exc)
            bar.write(f"failed: {summary.failed[str(capture)]}", file=sys.stderr)
    write_json_atomic(out_dir / "batch.json", summary.as_dict())
    return summary
