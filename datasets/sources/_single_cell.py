"""Helpers shared by the single-cell source readers: finding a set's folder, one-cell records."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from smearscope.datasets.io import IMAGE_SUFFIXES, check_image_file
from smearscope.datasets.records import Domain, ImageRecord, LoadIssue, LoadResult
from smearscope.datasets.schema import taxonomy

T = TypeVar("T")
SEARCH_DEPTH = 2


def find_root(root: str | Path, accept: Callable[[Path], bool], what: str) -> Path:
    """``root`` itself or the first folder below it (at most two levels down, by name) that
    ``accept`` says holds the set; ``ValueError`` naming ``what`` was looked for otherwise.

    Lets a user point at the folder they unpacked, whether or not the archive added a
    wrapping folder of its own.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"{root}: folder not found")
    level = [root.resolve()]
    for _ in range(SEARCH_DEPTH + 1):
        for folder in level:
            if accept(folder):
                return folder
        level = [child for folder in level for child in subfolders(folder)]
    raise ValueError(f"{root}: no {what} found here or up to {SEARCH_DEPTH} folders below")


def subfolders(folder: Path) -> list[Path]:
    """Visible sub-folders, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def child_ci(folder: Path, name: str) -> Path | None:
    """The entry of ``folder`` called ``name``, ignoring case; ``None`` when there is none."""
    exact = folder / name
    if exact.exists():
        return exact
    if not folder.is_dir():
        return None
    for entry in sorted(folder.iterdir()):
        if entry.name.lower() == name.lower():
            return entry
    return None


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (hidden files ignored), sorted by name."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def check_splits(splits: Sequence[str] | None, known: Sequence[str], source: str) -> tuple[str, ...]:
    """The requested splits (all of ``known`` when ``None``); ``ValueError`` for unknown ones."""
    if splits is None:
        return tuple(known)
    if isinstance(splits, str):
        splits = [splits]
    unknown = [s for s in splits if s not in known]
    if unknown:
        raise ValueError(f"{source}: unknown split(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return tuple(dict.fromkeys(splits))


def single_cell_record(
    path: Path, source: str, label: str, domain: Domain, info: dict[str, Any] | None = None
) -> ImageRecord:
    """A record whose one cell fills the whole image; ``ValueError`` for a bad file or label."""
    cell_type = taxonomy().unify(source, label)
    width, height = check_image_file(path)
    return ImageRecord(
        path=str(path),
        width=width,
        height=height,
        domain=domain,
        boxes_xyxy=[[0.0, 0.0, float(width), float(height)]],
        cell_types=[cell_type],
        source_labels=[str(label)],
        info=info or {},
    )


def add_single_cell(
    result: LoadResult, path: Path, source: str, label: str, domain: Domain, info: dict[str, Any] | None = None
) -> None:
    """Append the record of one single-cell image, or an issue saying why it was skipped."""
    try:
        result.records.append(single_cell_record(path, source, label, domain, info))
    except ValueError as exc:
        result.issues.append(issue(path, exc))


def issue(path: str | Path, reason: str | Exception) -> LoadIssue:
    """A ``LoadIssue``; a ``ValueError`` message that already starts with the path is not repeated."""
    text = str(reason)
    prefix = f"{path}: "
    return LoadIssue(str(path), text[len(prefix):] if text.startswith(prefix) else text)


def progress(items: Iterable[T], desc: str) -> Iterator[T]:
    """A progress bar on a terminal, a plain iteration elsewhere."""
    from tqdm import tqdm

    return iter(tqdm(items, desc=desc, disable=None, leave=False, unit="file"))
