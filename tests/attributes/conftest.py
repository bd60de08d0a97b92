"""Fixtures for the cell model tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cell_support import make_wbcatt_folder


@pytest.fixture()
def wbcatt_folder(tmp_path: Path) -> Path:
    """64 training and 32 validation drawn cells in the WBCAtt layout."""
    return make_wbcatt_folder(tmp_path / "wbcatt", {"train": 64, "val": 32})
