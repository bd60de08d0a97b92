"""Test session set-up: every library's settings, caches and database go to a temp folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="smearscope-tests-"))
for _name, _value in {
    "SMEARSCOPE_HOME": _SESSION_HOME,
    "YOLO_CONFIG_DIR": _SESSION_HOME / "ultralytics",
    "FIFTYONE_DATABASE_DIR": _SESSION_HOME / "fiftyone-db",
    "FIFTYONE_CONFIG_PATH": _SESSION_HOME / "fiftyone-config.json",
    "MPLCONFIGDIR": _SESSION_HOME / "matplotlib",
    "XDG_CACHE_HOME": _SESSION_HOME / "cache",
}.items():
    os.environ[_name] = str(_value)
os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"
os.environ.pop("FIFTYONE_DATABASE_URI", None)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip with a reason when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only CI and developer machines have it)")
    return SHARED_DATA
