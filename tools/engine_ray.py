"""Batch analysis of captures on a Ray cluster through Ray Data, with the local engine's outputs.

Captures are dispatched with ``ray.data.from_items(...).map_batches(CaptureWorker, ...)``:
a pool of model-holding actors, each calling the job factory once (weights load once per
worker), then analysing captures one folder at a time with the same temporary-folder-and-
rename scheme as ``smearscope.tools.batch.run_batch``. Folder names (``output_names`` and
``output_folder``: a capture never replaces another's result, also one from an earlier run),
files and ``result.json`` are the same as the local engine's for the same inputs.

Every worker must see ``out_dir`` at the same path (one machine, or a shared file system)
and local input paths at the same paths. The worker that analyses a URL copies it into a
hidden temporary folder beside the capture's output folder (removed afterwards; left over
by a killed worker, it is removed at the end of the run), with its scale sidecar
``<URL>.json`` when there is one, and the results name the URL wherever the job wrote the
copy's path. A worker that dies (killed, out of memory) is restarted by Ray
and its captures retried; a capture that was finished before the death is found done and
not redone, and one that has stopped its worker ``max_attempts`` times is listed as failed.
Ray is imported only inside these functions.
"""

from __future__ import annotations

import csv
import functools
import glob
import html
import io
import json
import logging
import os
import secrets
import shutil
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from smearscope.datasets.io import write_json_atomic, write_text_atomic
from smearscope.tools.batch import (
    BatchSummary,
    analyze_into,
    failure_reason,
    input_signature,
    output_folder,
    output_names,
    saved_signature,
)
from smearscope.tools.capture_sources import fetch, fetch_sidecar, is_url, remote_signature, resolve_inputs

RAY_MISSING = "the Ray engine needs Ray, which is not installed: pip install 'smearscope[ray]'"
DONE, FAILED = "done", "failed"
JobFactory = Callable[[], Callable[[Path, Path], dict]]


def require_ray():
    """The ``ray`` module (with Ray Data); a one-line ``ValueError`` when Ray is not installed."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data is part of the extra)
    except ImportError:
        raise ValueError(RAY_MISSING) from None
    return ray


def item_is_done(item: Path | str, final: Path) -> bool:
    """True when ``final`` holds a finished result for this capture (path or URL) as it is now."""
    saved = saved_signature(final)
    if saved is None:
        return False
    try:
        return saved == (remote_signature(item) if is_url(item) else input_signature(Path(item)))
    except (OSError, ValueError):
        return False


def attempts_file(final: Path) -> Path:
    """Hidden file beside ``final`` counting how often a worker started on that capture."""
    return final.parent / f".{final.name}.attempts"


def _next_attempt(final: Path) -> int:
    counter = attempts_file(final)
    try:
        previous = int(counter.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = 0
    write_text_atomic(counter, str(previous + 1))
    return previous + 1


def analyze_item(item: str, final: Path, job: Callable[[Path, Path], dict], max_attempts: int) -> tuple[str, str]:
    """Analyse one capture (path or URL) into ``final``; returns (``"done"``/``"failed"``, reason).

    A capture found done was finished by an earlier attempt of this run (the driver skips
    those done before the run), so it counts as done. Exceptions become the reason.
    """
    try:
        if item_is_done(item, final):
            return DONE, ""
        if _next_attempt(final) > max_attempts:
            # The count stays, so a retried batch holding this capture fails it again at once.
            return FAILED, (f"{item}: its worker stopped {max_attempts} times while analysing it "
                            "(killed, out of memory or crashed)")
        outcome = _analyze(item, final, job)
    except Exception as exc:  # one bad capture must not stop the batch
        outcome = FAILED, failure_reason(item, exc)
    attempts_file(final).unlink(missing_ok=True)  # not reached when the worker is killed
    return outcome


def _analyze(item: str, final: Path, job: Callable[[Path, Path], dict]) -> tuple[str, str]:
    if not is_url(item):
        analyze_into(Path(item), final, job)
        return DONE, ""
    signature = remote_signature(item)
    # Named like analyze_into's work folders, so that the copy a killed worker leaves is
    # removed with them: here, before a retry copies the capture again (one worker at a time
    # handles a capture), and at the end of the run (_remove_leftovers).
    _remove_work_folders(final)
    copy_folder = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    local = copy_folder / (PurePosixPath(urlsplit(item).path).name or "capture")
    try:
        fetch(item, local)
        fetch_sidecar(item, local)
        analyze_into(local, final, _naming_url(job, local, item), signature)
    except Exception as exc:  # name the URL, not the temporary copy
        reason = failure_reason(item, exc)
        return FAILED, reason.replace(f"{item}: {local}", item).replace(str(local), item)
    finally:
        shutil.rmtree(copy_folder, ignore_errors=True)
    return DONE, ""


def _naming_url(job: Callable[[Path, Path], dict], local: Path, url: str) -> Callable[[Path, Path], dict]:
    """``job`` run on ``local``, a copy of the capture at ``url``, with results that name ``url``.

    Wherever the job wrote the copy's path, in the returned data or in the text files it
    wrote (JSON, HTML, CSV as each writes it, other text as it is), the URL is written instead.
    """

    def run(capture: Path, folder: Path) -> dict:
        result = job(capture, folder)
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                _name_url_in_file(path, str(local), url)
        return _with_url(result, str(local), url)

    return run


def _with_url(value: Any, local: str, url: str) -> Any:
    """``value`` (JSON-like data) with ``local`` replaced by ``url`` in every string."""
    if isinstance(value, str):
        return value.replace(local, url)
    if isinstance(value, dict):
        return {key: _with_url(item, local, url) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_with_url(item, local, url) for item in value]
    return value


def _name_url_in_file(path: Path, local: str, url: str) -> None:
    """Rewrite the text file ``path`` with ``url`` where it names ``local``; other files stay."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return  # not text (an image ...)
    suffix = path.suffix.lower()
    if suffix in (".json", ".geojson"):
        named = text
        for ascii_only in (True, False):  # JSON string escapes apply character by character
            named = named.replace(json.dumps(local, ensure_ascii=ascii_only)[1:-1],
                                  json.dumps(url, ensure_ascii=ascii_only)[1:-1])
    elif suffix in (".html", ".htm", ".xml", ".svg"):
        named = text.replace(html.escape(local), html.escape(url))
        named = named.replace(html.escape(local, quote=False), html.escape(url))
    elif suffix == ".csv":
        named = _csv_with_url(text, local, url)
    else:
        named = text.replace(local, url)
    if named != text:
        write_text_atomic(path, named)


def _csv_with_url(text: str, local: str, url: str) -> str:
    """CSV ``text`` with ``local`` replaced by ``url`` in every field, quoted as the URL needs."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not any(local in field for row in rows for field in row):
        return text
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if "\r\n" in text else "\n")
    writer.writerows([[field.replace(local, url) for field in row] for row in rows])
    return buffer.getvalue()


class CaptureWorker:
    """A Ray Data actor: builds the analysis job once, then analyses batches of captures.

    A batch has columns ``capture`` (path or URL) and ``folder`` (its final output folder);
    the result has ``capture``, ``status`` and ``reason``. Failures are returned as data.
    """

    def __init__(self, job_factory: JobFactory, max_attempts: int):
        self.max_attempts = max_attempts
        self.setup_error = ""
        try:
            self.job = job_factory()
        except Exception as exc:  # reported per capture, so the run ends with a summary
            self.job = None
            self.setup_error = _first_line(exc)

    def __call__(self, batch: dict) -> dict:
        captures = [str(capture) for capture in batch["capture"]]
        outcomes = [
            (FAILED, f"{capture}: the analysis could not be set up: {self.setup_error}")
            if self.job is None
            else analyze_item(capture, Path(str(folder)), self.job, self.max_attempts)
            for capture, folder in zip(captures, batch["folder"])
        ]
        return {
            "capture": captures,
            "status": [status for status, _ in outcomes],
            "reason": [reason for _, reason in outcomes],
        }


@dataclass(frozen=True)
class PoolOptions:
    """The worker pool: size (None: as many as fit), captures per call, resources per worker,
    and how many times a capture may stop its worker before it is listed as failed."""

    num_actors: int | None = None
    batch_size: int = 1
    num_cpus: float = 1
    num_gpus: float = 0
    max_attempts: int = 3

    def __post_init__(self):
        if self.num_actors is not None and self.num_actors < 1:
            raise ValueError(f"number of actors must be at least 1, got {self.num_actors}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError(f"CPUs and GPUs per actor cannot be negative, got {self.num_cpus:g} and {self.num_gpus:g}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[object]:
    """Ray, connected: an already initialised Ray as it is, the cluster at ``address``, or a
    local Ray with ``num_cpus`` (default: this machine's CPUs), no dashboard and its logs in
    a temporary folder. No usage statistics are sent. A local Ray asks for a token made for
    this process (nothing written to ``~/.ray``). What this opens, it shuts down."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    settings = {"RAY_USAGE_STATS_ENABLED": "0"}
    if not address and not os.environ.get("RAY_AUTH_TOKEN"):
        settings["RAY_AUTH_TOKEN"] = _process_token()
    saved = {name: os.environ.get(name) for name in (*settings, "RAY_AUTH_MODE")}
    os.environ.update(settings)
    temp = None if address else tempfile.mkdtemp(prefix="smearscope-ray-")
    try:
        if address:
            try:
                ray.init(address=address, logging_level=logging.WARNING)
            except (ConnectionError, ValueError) as exc:
                raise ValueError(f"Ray cluster {address!r}: cannot connect ({_first_line(exc)})") from None
        else:
            ray.init(
                num_cpus=num_cpus or os.cpu_count(),
                include_dashboard=False,
                _temp_dir=temp,
                logging_level=logging.WARNING,
            )
        yield ray
    finally:
        ray.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


@functools.lru_cache(maxsize=1)
def _process_token() -> str:
    """One random cluster token per process (Ray caches the first token it reads)."""
    return secrets.token_hex(32)


def _pool_size(ray, pool: PoolOptions, batches: int) -> int:
    """Actors to start: ``pool.num_actors``, or as many as the cluster's CPUs (GPUs) hold;
    never more than there are batches. A single actor that cannot fit is a ``ValueError``."""
    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    if pool.num_cpus > cpus or pool.num_gpus > gpus:
        raise ValueError(
            f"one worker needs {pool.num_cpus:g} CPU and {pool.num_gpus:g} GPU "
            f"but the Ray cluster has {cpus:g} CPU and {gpus:g} GPU"
        )
    wanted = pool.num_actors
    if wanted is None and pool.num_gpus:
        wanted = int(gpus // pool.num_gpus)
    elif wanted is None:
        wanted = int(cpus // pool.num_cpus) if pool.num_cpus else int(cpus)
    return max(1, min(wanted, batches))


def run_batch_ray(
    inputs: str | Path | list[str | Path],
    out_dir: str | Path,
    job_factory: JobFactory,
    address: str | None = None,
    num_actors: int | None = None,
    batch_size: int = 1,
    num_cpus_per_actor: float = 1,
    num_gpus_per_actor: float = 0,
    progress: bool = True,
    max_attempts: int = 3,
) -> BatchSummary:
    """Analyse captures on Ray, resumably; the same outputs and ``batch.json`` as ``run_batch``.

    ``inputs``: capture files, folders, manifests (see ``capture_sources``) and URLs.
    ``job_factory()`` (picklable, e.g. ``functools.partial(make_capture_job, options)``) is
    called once per actor and returns ``analyze_one(capture, folder) -> dict``. Captures
    already done are skipped before anything is dispatched; a failing capture is listed
    with its reason and the rest goes on. With a ``ray://`` address (Ray Client) the whole
    run is one task on the cluster: paths are the cluster's, made absolute here, and no
    progress is shown.
    """
    require_ray()
    pool = PoolOptions(num_actors, batch_size, num_cpus_per_actor, num_gpus_per_actor, max_attempts)
    if not (address or "").startswith("ray://"):
        return _run_here(inputs, out_dir, job_factory, address, pool, progress)
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    items = [item if is_url(item) else os.path.abspath(item) for item in items]
    with ray_session(address) as ray:
        on_cluster = ray.remote(num_cpus=0)(_run_here)
        return ray.get(on_cluster.remote(items, os.path.abspath(out_dir), job_factory, None, pool, False))


def _run_here(
    inputs: str | Path | list[str | Path],
    out_dir: str | Path,
    job_factory: JobFactory,
    address: str | None,
    pool: PoolOptions,
    progress: bool,
) -> BatchSummary:
    """run_batch_ray's work, driven from this process (Ray started or joined only if needed)."""
    from tqdm import tqdm

    captures = resolve_inputs(inputs)
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = output_names(captures)
    summary = BatchSummary()
    pending: dict[Path | str, Path] = {}  # capture -> its output folder
    with tqdm(total=len(captures), desc="captures", unit="capture", disable=not progress, file=sys.stderr) as bar:
        for capture in captures:
            final = output_folder(out_dir, capture, names[capture])
            if item_is_done(capture, final):
                summary.skipped.append(str(capture))
                bar.update()
            else:
                attempts_file(final).unlink(missing_ok=True)
                pending[capture] = final
        outcomes: dict[str, tuple[str, str]] = {}
        if pending:
            with ray_session(address) as ray:
                items = [{"capture": str(capture), "folder": str(final)} for capture, final in pending.items()]
                for row in _dispatch(ray, items, job_factory, pool):
                    outcomes[row["capture"]] = (row["status"], row["reason"])
                    if row["status"] == FAILED:
                        bar.write(f"failed: {row['reason']}", file=sys.stderr)
                    bar.update()
    for capture, final in pending.items():
        _remove_leftovers(final)
        status, reason = outcomes.get(str(capture), (FAILED, f"{capture}: no result came back from the Ray workers"))
        if status == DONE:
            summary.done.append(str(capture))
        else:
            summary.failed[str(capture)] = reason
    write_json_atomic(out_dir / "batch.json", summary.as_dict())
    return summary


def _remove_work_folders(final: Path) -> None:
    """Remove the temporary folders (work folders of analyze_into, copies of URLs) beside ``final``."""
    for stale in final.parent.glob(f".{glob.escape(final.name)}.????????.tmp"):
        shutil.rmtree(stale, ignore_errors=True)


def _remove_leftovers(final: Path) -> None:
    """Remove what killed workers left beside ``final``: temporary folders and the attempt count."""
    _remove_work_folders(final)
    attempts_file(final).unlink(missing_ok=True)


def _dispatch(ray, items: list[dict], job_factory: JobFactory, pool: PoolOptions) -> Iterator[dict]:
    """Rows (capture, status, reason) from a pool of CaptureWorker actors.

    Ray Data restarts actors that die and retries their tasks by default (``max_restarts``
    and ``max_task_retries`` of -1 for actor pools); ``pool.max_attempts`` bounds the
    retries of a capture that keeps stopping its worker.
    """
    from ray.data import ActorPoolStrategy

    size = _pool_size(ray, pool, batches=-(-len(items) // pool.batch_size))
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        CaptureWorker,
        fn_constructor_kwargs={"job_factory": job_factory, "max_attempts": pool.max_attempts},
        batch_size=pool.batch_size,
        batch_format="numpy",
        compute=ActorPoolStrategy(size=size),
        num_cpus=pool.num_cpus,
        num_gpus=pool.num_gpus,
    )
    dataset.context.enable_progress_bars = False  # the caller shows one bar over all captures
    dataset.context.print_on_execution_start = False
    progress_log = logging.getLogger("ray.data._internal.progress")
    level = progress_log.level
    progress_log.setLevel(logging.ERROR)  # silence "Progress bars disabled" advice
    try:
        yield from dataset.iter_rows()
    finally:
        progress_log.setLevel(level)
