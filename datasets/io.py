"""File input and output shared by every module: atomic writes and checked image reads."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 1) -> Path:
    """Write strict JSON atomically: numpy values become plain ones, NaN and infinities ``null``."""
    return write_text_atomic(path, json.dumps(strict_json(data), indent=indent, allow_nan=False))


def strict_json(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars and arrays unpacked, non-finite floats ``None``."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def read_json(path: str | Path) -> Any:
    """Read JSON; a malformed or missing file raises a one-line ``ValueError``."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: malformed JSON ({exc})") from None


def to_rgb_uint8(image: np.ndarray, path: str | Path = "<array>") -> np.ndarray:
    """Convert grayscale, RGBA or 16-bit/float pixels to RGB uint8; reject what cannot be."""
    if image is None or image.size == 0:
        raise ValueError(f"{path}: empty image")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: unsupported image shape {image.shape}")
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        top = 1.0 if float(np.nanmax(image)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(image) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer) or image.dtype == bool:
        top = max(int(image.max()), 1)
        return (image.astype(np.float64) / top * 255.0 + 0.5).astype(np.uint8)
    raise ValueError(f"{path}: unsupported pixel type {image.dtype}")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); a bad file raises a one-line ``ValueError``."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: image file not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        try:
            image = tifffile.imread(path)
        except Exception as exc:  # tifffile raises many types for broken files
            raise ValueError(f"{path}: unreadable TIFF ({exc})") from None
        if image.ndim == 3 and image.shape[0] in (3, 4) and image.shape[2] not in (3, 4):
            image = np.moveaxis(image, 0, 2)
        return to_rgb_uint8(image, path)
    data = np.fromfile(path, dtype=np.uint8)
    if _is_truncated(path, data):
        raise ValueError(f"{path}: truncated image file")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return to_rgb_uint8(image, path)


def _is_truncated(path: Path, data: np.ndarray) -> bool:
    """True when a JPEG lacks its end marker or a PNG lacks its IEND chunk."""
    head = bytes(data[:8])
    if head[:2] == b"\xff\xd8":
        return bytes(data[-2:]) != b"\xff\xd9" and b"\xff\xd9" not in bytes(data[-64:])
    if head == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in bytes(data[-16:])
    return False


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file without decoding all of its pixels where possible."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: image file not found")
    try:
        with Image.open(path) as image:
            return int(image.width), int(image.height)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def check_image_file(path: str | Path) -> tuple[int, int]:
    """(width, height) from an image's header, after checking the file is present, not empty
    and not cut short (JPEG end marker, PNG IEND chunk); one-line ``ValueError`` otherwise.

    Reads the header and the last bytes only, so it is cheap enough for a whole data set.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: image file not found")
    size = path.stat().st_size
    if size == 0:
        raise ValueError(f"{path}: empty file")
    with path.open("rb") as handle:
        head = handle.read(8)
        handle.seek(max(size - 64, 0))
        tail = handle.read()
    if _is_truncated(path, np.frombuffer(head + tail, dtype=np.uint8)):
        raise ValueError(f"{path}: truncated image file")
    return image_size(path)
