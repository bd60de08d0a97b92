"""Where captures come from: local files and folders, manifests, and URLs read through fsspec.

A manifest is a ``.txt``/``.lst``/``.list`` file with one path or URL per line (blank lines
and ``#`` comments skipped) or a ``.csv`` file with a ``path`` column. Relative paths in a
manifest are resolved against the manifest's own folder. A URL is anything of the form
``scheme://...`` (``file://``, ``s3://``, ``gs://``, ``https://`` ...); it is read through
fsspec, so the protocol's fsspec package (s3fs, gcsfs, ...) must be installed where it is read.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from urllib.parse import urlsplit

from smearscope.tools.batch import collect_captures

LOG = logging.getLogger(__name__)
MANIFEST_SUFFIXES = (".txt", ".lst", ".list", ".csv")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
# fsspec info() keys that change when an object changes, in order of preference.
_VERSION_KEYS = ("ETag", "etag", "md5Hash", "generation", "mtime", "LastModified", "last_modified", "updated")


def is_url(item: str | Path) -> bool:
    """True for ``scheme://...`` strings; plain and Windows paths are not URLs."""
    return isinstance(item, str) and bool(_URL.match(item))


def is_manifest(item: str | Path) -> bool:
    """True for an existing local file whose suffix marks it as a manifest."""
    path = Path(item)
    return not is_url(item) and path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file()


def read_manifest(path: str | Path) -> list[tuple[int, str]]:
    """(line number, entry) pairs of a manifest, relative paths made absolute."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: unreadable manifest ({exc})") from None
    if path.suffix.lower() == ".csv":
        rows = csv.DictReader(text.splitlines())
        if "path" not in (rows.fieldnames or []):
            raise ValueError(f"{path}: CSV manifest has no 'path' column (columns: {rows.fieldnames})")
        entries = [(rows.line_num, (row["path"] or "").strip()) for row in rows]
    else:
        entries = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)]
    base = path.resolve().parent
    return [
        (number, entry if is_url(entry) else str(base / entry))
        for number, entry in entries
        if entry and not entry.startswith("#")
    ]


def resolve_inputs(inputs: str | Path | list[str | Path], allow_urls: bool = True) -> list[Path | str]:
    """Captures named by ``inputs`` (files, folders, manifests, URLs), in order, without repeats.

    Local captures come back as resolved ``Path`` objects (as ``collect_captures`` gives
    them), URLs as strings. A missing local file raises a ``ValueError`` naming it (and the
    manifest line that named it); so does a URL when ``allow_urls`` is false.
    """
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    found: list[Path | str] = []
    for item in items:
        if is_manifest(item):
            for number, entry in read_manifest(item):
                try:
                    found.extend(_one_input(entry, allow_urls))
                except ValueError as exc:
                    raise ValueError(f"{item} line {number}: {exc}") from None
        else:
            found.extend(_one_input(item, allow_urls))
    return list(dict.fromkeys(found))


def _one_input(item: str | Path, allow_urls: bool) -> list[Path | str]:
    if is_url(item):
        if not allow_urls:
            raise ValueError(f"{item}: URLs are read by the Ray engine only (--engine ray)")
        return [item]
    return list(collect_captures([item]))


def _filesystem(url: str):
    """(fsspec filesystem, path inside it) for a URL; a one-line error when it cannot be opened."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise ValueError(f"{url}: no fsspec package for this protocol is installed ({exc})") from None
    except ValueError as exc:
        raise ValueError(f"{url}: {exc}") from None


def remote_signature(url: str) -> dict:
    """What identifies a remote input for resuming: URL, size and a version (ETag, mtime ...)."""
    fs, path = _filesystem(url)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise ValueError(f"{url}: no such file") from None
    except OSError as exc:
        raise ValueError(f"{url}: cannot be read ({exc})") from None
    version = next((info[key] for key in _VERSION_KEYS if info.get(key) is not None), None)
    return {"capture": url, "size": info.get("size"), "version": None if version is None else str(version)}


def fetch(url: str, target: Path) -> Path:
    """Copy the capture at ``url`` to the local file ``target``; return ``target``."""
    fs, path = _filesystem(url)
    try:
        fs.get_file(path, str(target))
    except FileNotFoundError:
        raise ValueError(f"{url}: no such file") from None
    except OSError as exc:
        raise ValueError(f"{url}: cannot be copied ({exc})") from None
    return target


def fetch_sidecar(url: str, local: Path) -> bool:
    """Copy the scale sidecar ``<url>.json`` beside ``local`` (as ``<local name>.json``) if it
    exists; return whether it did. A URL with a query string (a signed URL) has no sidecar,
    and a sidecar that cannot be copied is left out with a warning (the scale is then measured)."""
    if urlsplit(url).query:
        return False
    target = local.with_name(local.name + ".json")
    try:
        fs, path = _filesystem(url + ".json")
        if not fs.isfile(path):
            return False
        fetch(url + ".json", target)
    except (OSError, ValueError) as exc:
        target.unlink(missing_ok=True)
        LOG.warning("%s.json: scale sidecar not copied (%s)", url, exc)
        return False
    return True
