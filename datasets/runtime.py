"""Offline set-up for the third-party libraries smearscope drives (ultralytics, FiftyOne).

Call :func:`prepare_ultralytics` or :func:`prepare_fiftyone` inside a function, right before
the first import of that library. They point its settings, caches and database at
folders under ``$SMEARSCOPE_HOME`` (default ``~/.smearscope``), only where the user has
not set them already, and switch off network features. Nothing happens at import time.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

HOME_ENV = "SMEARSCOPE_HOME"


def smearscope_home() -> Path:
    """The folder smearscope owns for settings, caches and the FiftyOne database."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".smearscope").expanduser()


def _default(name: str, value: str) -> None:
    """Set an environment variable unless the user already has."""
    if not os.environ.get(name):
        os.environ[name] = value


def _bundled_font() -> Path | None:
    """A TTF shipped by matplotlib (an ultralytics dependency), to stand in for Arial."""
    try:
        import matplotlib
    except ImportError:
        return None
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return font if font.is_file() else None


def prepare_ultralytics() -> Path:
    """Make ultralytics offline and self-contained; return its settings folder."""
    config_dir = Path(os.environ.get("YOLO_CONFIG_DIR") or smearscope_home() / "ultralytics")
    config_dir.mkdir(parents=True, exist_ok=True)
    _default("YOLO_CONFIG_DIR", str(config_dir))
    _default("YOLO_OFFLINE", "1")
    _default("YOLO_AUTOINSTALL", "0")
    _default("YOLO_VERBOSE", "False")
    _default("MPLCONFIGDIR", str(smearscope_home() / "matplotlib"))
    # ultralytics looks for its fonts in YOLO_CONFIG_DIR/Ultralytics (8.4) before asking github.
    for folder in (config_dir, config_dir / "Ultralytics"):
        folder.mkdir(parents=True, exist_ok=True)
        for font_name in ("Arial.ttf", "Arial.Unicode.ttf"):
            target = folder / font_name
            font = _bundled_font()
            if font is not None and not target.exists():
                shutil.copyfile(font, target)
    return config_dir


def prepare_fiftyone() -> Path:
    """Point FiftyOne at a smearscope-owned database folder, offline; return that folder."""
    home = smearscope_home()
    database_dir = Path(os.environ.get("FIFTYONE_DATABASE_DIR") or home / "fiftyone" / "db")
    if not os.environ.get("FIFTYONE_DATABASE_URI"):
        database_dir.mkdir(parents=True, exist_ok=True)
        _default("FIFTYONE_DATABASE_DIR", str(database_dir))
    _default("FIFTYONE_CONFIG_PATH", str(home / "fiftyone" / "config.json"))
    _default("FIFTYONE_DO_NOT_TRACK", "true")
    _default("FIFTYONE_DATABASE_VALIDATION", "false")
    _default("FIFTYONE_DEFAULT_DATASET_DIR", str(home / "fiftyone" / "datasets"))
    _default("FIFTYONE_MODEL_ZOO_DIR", str(home / "fiftyone" / "models"))
    _default("FIFTYONE_PLUGINS_DIR", str(home / "fiftyone" / "plugins"))
    _default("MPLCONFIGDIR", str(home / "matplotlib"))
    return database_dir


def set_torch_threads() -> int:
    """Use every CPU core for torch (ultralytics sets one thread); return the count."""
    import torch

    threads = max(1, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    return threads
