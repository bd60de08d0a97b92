"""The sample captures shipped with smearscope (see samples/CREDITS.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from smearscope.datasets.io import IMAGE_SUFFIXES


def sample_captures() -> list[Path]:
    """Paths of the bundled sample captures, sorted by name."""
    folder = Path(str(resources.files("smearscope.tools").joinpath("samples")))
    captures = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not captures:
        raise ValueError(f"{folder}: no bundled sample captures found (is the package installed whole?)")
    return captures
