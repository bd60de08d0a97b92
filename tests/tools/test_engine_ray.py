"""Ray engine: the local engine's outputs, resumable, failures reported, killed workers lose nothing."""

from __future__ import annotations

import argparse
import csv
import functools
import html
import io
import json
import os
import signal
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from smearscope.datasets.io import read_image, write_json_atomic, write_text_atomic
from smearscope.tools.batch import collect_captures, run_batch
from smearscope.tools.batch_summary import write_batch_summary
from smearscope.tools.capture_sources import read_manifest, resolve_inputs
from smearscope.tools.engine_ray import run_batch_ray, ray_session
from smearscope.tools.engines import add_engine_arguments, run_with_engine

# Ray Data's own context copies touch its deprecated settings.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def colour_stats(capture: Path, folder: Path) -> dict:
    """A real, light per-capture job: read the image, write its statistics."""
    image = read_image(capture)
    pixels = image.reshape(-1, 3).astype(np.float64)
    write_text_atomic(folder / "mean.txt", " ".join(f"{v:.3f}" for v in pixels.mean(0)))
    write_json_atomic(folder / "histogram.json", np.bincount(image[..., 1].ravel(), minlength=256)[::32])
    return {"height": image.shape[0], "width": image.shape[1], "brightest": int(image.max())}


def counting_factory(calls: Path):
    """Build the job once, leaving one file per call so the test can count model loads."""
    calls.mkdir(exist_ok=True)
    (calls / f"{os.getpid()}-{len(list(calls.iterdir()))}").write_text("loaded")
    return colour_stats


def broken_factory():
    raise OSError("weights.pt: file not found")


def killing_factory(victim_marker: Path, runs: Path):
    """A job that kills its own worker: once for a ``*victim`` capture (while the marker file
    exists), every time for ``poison*``; it leaves one file in ``runs`` per start."""

    def job(capture: Path, folder: Path) -> dict:
        (runs / f"{capture.stem}-{len(list(runs.iterdir()))}").write_text("started")
        (folder / "partial.txt").write_text("started")
        if capture.stem.endswith("victim") and victim_marker.exists():
            victim_marker.unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        if capture.stem.startswith("poison"):
            os.kill(os.getpid(), signal.SIGKILL)
        (folder / "partial.txt").unlink()
        return colour_stats(capture, folder)

    return job


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray (2 CPUs) for the whole session; skips when Ray is not installed."""
    try:
        from ray import cloudpickle
    except ImportError:
        pytest.skip("Ray is not installed (pip install 'smearscope[ray]')")
    # The workers cannot import this test module by name: send its functions by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with ray_session(num_cpus=2) as ray:
        yield ray


def make_captures(folder: Path, count: int, prefix: str = "c") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    paths = []
    for index in range(count):
        path = folder / f"{prefix}{index}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (12 + index, 16, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "in"
    make_captures(folder, 3)
    make_captures(folder / "other", 1)  # "c0" twice: colliding stems
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    return folder


def test_ray_outputs_equal_the_local_engine_and_a_rerun_skips_before_dispatch(tmp_path, inputs, ray_cluster):
    before = tree(inputs)
    local = run_batch(collect_captures([inputs]), tmp_path / "local", colour_stats, progress=False)
    calls = tmp_path / "calls"
    summary = run_batch_ray([inputs], tmp_path / "ray", functools.partial(counting_factory, calls),
                            num_actors=2, progress=False)

    assert summary.as_dict() == local.as_dict()
    assert len(summary.done) == 4
    assert summary.failed == {str(inputs / "broken.png"): f"{inputs / 'broken.png'}: truncated image file"}
    assert tree(tmp_path / "ray") == tree(tmp_path / "local"), "same folders, files and bytes"
    assert len(list((tmp_path / "ray").glob("c0-*"))) == 2
    assert 1 <= len(list(calls.iterdir())) <= 2, "the job is built once per worker, not per capture"
    assert tree(inputs) == before, "inputs are never modified"

    done_files = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").glob("*/result.json")}
    again = run_batch_ray([inputs], tmp_path / "ray", broken_factory, num_actors=1, progress=False)
    assert again.skipped == summary.done and again.done == []
    # Only the failed capture reached a worker, whose job could not be built.
    broken = inputs / "broken.png"
    assert again.failed == {str(broken): f"{broken}: the analysis could not be set up: weights.pt: file not found"}
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").glob("*/result.json")} == done_files


def test_killed_workers_lose_nothing_and_a_capture_that_always_kills_is_listed(tmp_path, ray_cluster):
    # Sorted, in batches of two: (c0, c1) (c2, c3) (c4victim, poison0): the poison capture's
    # retries find the victim done and do not redo it.
    captures = make_captures(tmp_path / "in", 4) + [tmp_path / "in" / "c4victim.png"]
    cv2.imwrite(str(captures[-1]), np.full((9, 9, 3), 200, np.uint8))
    poison = tmp_path / "in" / "poison0.png"
    cv2.imwrite(str(poison), np.zeros((9, 9, 3), np.uint8))
    marker, runs = tmp_path / "kill-victim-once", tmp_path / "runs"
    marker.write_text("")
    runs.mkdir()
    summary = run_batch_ray([tmp_path / "in"], tmp_path / "out", functools.partial(killing_factory, marker, runs),
                            num_actors=2, batch_size=2, max_attempts=2, progress=False)

    assert not marker.exists(), "the victim's first attempt killed its worker"
    assert summary.done == [str(p) for p in captures]
    assert summary.failed == {str(poison): f"{poison}: its worker stopped 2 times while analysing it "
                                           "(killed, out of memory or crashed)"}
    started = sorted(p.name.rsplit("-", 1)[0] for p in runs.iterdir())
    assert started == ["c0", "c1", "c2", "c3", "c4victim", "c4victim", "poison0", "poison0"]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["batch.json"] + sorted(p.stem for p in captures), "one folder per capture, nothing left over"
    reference = run_batch(captures, tmp_path / "local", colour_stats, progress=False)
    assert len(reference.done) == len(captures)
    for capture in captures:
        assert tree(tmp_path / "out" / capture.stem) == tree(tmp_path / "local" / capture.stem)


def test_manifests_list_paths_and_urls(tmp_path):
    captures = make_captures(tmp_path / "in", 2)
    (tmp_path / "lists").mkdir()
    plain = tmp_path / "lists" / "captures.txt"
    plain.write_text(f"# captures\n../in/c0.png\n\n{captures[1]}\nfile://{captures[0]}\n")
    table = tmp_path / "lists" / "captures.csv"
    table.write_text(f"slide,path\ns1,../in/c1.png\ns2,{tmp_path / 'in'}\n")

    assert read_manifest(plain) == [(2, str(tmp_path / "lists" / "../in/c0.png")), (4, str(captures[1])),
                                    (5, f"file://{captures[0]}")]
    assert resolve_inputs(plain) == [captures[0], captures[1], f"file://{captures[0]}"]
    assert resolve_inputs([table]) == [captures[1], captures[0]]

    (tmp_path / "lists" / "bad.csv").write_text("file\na.png\n")
    with pytest.raises(ValueError, match=r"bad.csv: CSV manifest has no 'path' column"):
        resolve_inputs(tmp_path / "lists" / "bad.csv")
    plain.write_text("../in/c0.png\n../in/missing.png\n")
    with pytest.raises(ValueError, match=r"captures.txt line 2: .*missing.png: no such file or folder"):
        resolve_inputs(plain)
    plain.write_text(f"file://{captures[0]}\n")
    with pytest.raises(ValueError, match="URLs are read by the Ray engine only"):
        resolve_inputs(plain, allow_urls=False)


def test_urls_in_a_manifest_are_copied_analysed_and_skipped_on_rerun(tmp_path, ray_cluster):
    captures = make_captures(tmp_path / "in", 2)
    url, missing = f"file://{captures[1]}", f"file://{tmp_path / 'in' / 'gone.png'}"
    manifest = tmp_path / "captures.txt"
    manifest.write_text(f"in/c0.png\n{url}\n{missing}\n")
    summary = run_batch_ray(manifest, tmp_path / "out", colour_stats_factory, progress=False)

    assert summary.done == [str(captures[0]), url]
    assert summary.failed == {missing: f"{missing}: no such file"}
    run_batch(captures, tmp_path / "local", colour_stats, progress=False)
    copied, local = tree(tmp_path / "out" / "c1"), tree(tmp_path / "local" / "c1")
    assert copied["mean.txt"] == local["mean.txt"] and copied["histogram.json"] == local["histogram.json"]
    saved = json.loads(copied["result.json"])
    assert saved["input"]["capture"] == url and saved["input"]["size"] == captures[1].stat().st_size
    assert saved["width"] == 16

    again = run_batch_ray(manifest, tmp_path / "out", colour_stats_factory, progress=False)
    assert again.skipped == [str(captures[0]), url] and list(again.failed) == [missing]


def colour_stats_factory():
    return colour_stats


def test_a_later_run_never_replaces_another_captures_folder_as_with_the_local_engine(tmp_path, ray_cluster):
    first = make_captures(tmp_path / "a", 1)[0]
    second = make_captures(tmp_path / "b", 2)[0]  # the same stem, other pixels
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    assert run_batch_ray([first], ray_out, colour_stats_factory, num_actors=1, progress=False).done == [str(first)]
    results_of_first = tree(ray_out / "c0")
    assert run_batch_ray([second], ray_out, colour_stats_factory, num_actors=1, progress=False).done == [str(second)]
    assert tree(ray_out / "c0") == results_of_first, "the first capture's results stay intact"
    for capture in (first, second):
        assert run_batch([capture], local_out, colour_stats, progress=False).done == [str(capture)]
    assert tree(ray_out) == tree(local_out), "the local engine's folders, files and bytes"
    folders = sorted(p.name for p in ray_out.iterdir() if p.is_dir())
    assert folders[0] == "c0" and folders[1].startswith("c0-") and len(folders) == 2
    for folder, capture in zip(folders, (first, second)):
        assert json.loads((ray_out / folder / "result.json").read_text())["input"]["capture"] == str(capture)

    done_files = {p: p.stat().st_mtime_ns for p in ray_out.glob("*/result.json")}
    for capture in (first, second):
        again = run_batch_ray([capture], ray_out, broken_factory, progress=False)
        assert again.skipped == [str(capture)] and again.done == [] and again.failed == {}
    assert {p: p.stat().st_mtime_ns for p in ray_out.glob("*/result.json")} == done_files


def naming_factory(given: Path, kill_marker: Path):
    """A job that names its capture in JSON, HTML, CSV and plain text outputs, keeps in ``given``
    the local file it was handed, and kills its worker once while ``kill_marker`` exists."""

    def job(capture: Path, folder: Path) -> dict:
        write_text_atomic(given / str(len(list(given.iterdir()))), str(capture))
        if kill_marker.exists():
            kill_marker.unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        name = str(capture)
        write_json_atomic(folder / "facts.json", {"capture": name, "note": f"read {name}"})
        write_text_atomic(folder / "report.html", f"<td>{html.escape(name)}</td>")
        table = io.StringIO()
        csv.writer(table).writerows([["capture", "cells"], [name, 0]])
        write_text_atomic(folder / "cells.csv", table.getvalue())
        write_text_atomic(folder / "source.txt", name)
        return {"capture": name, "sources": [name], **colour_stats(capture, folder)}

    return job


def test_url_results_name_the_url_and_every_local_copy_is_removed_even_after_a_kill(tmp_path, ray_cluster):
    # A name that JSON (non-ASCII), HTML (&) and CSV (,) each write in their own way.
    source = tmp_path / "in" / "smear-\u00e9&1,2.png"
    source.parent.mkdir()
    source.write_bytes(cv2.imencode(".png", np.full((10, 14, 3), 90, np.uint8))[1].tobytes())
    url = f"file://{source}"
    given, kill_marker = tmp_path / "given", tmp_path / "kill-once"
    given.mkdir()
    kill_marker.write_text("")
    out = tmp_path / "out"
    summary = run_batch_ray([url], out, functools.partial(naming_factory, given, kill_marker),
                            num_actors=1, progress=False)

    assert summary.done == [url] and not kill_marker.exists(), "the first attempt killed its worker"
    copies = [Path(p.read_text()) for p in given.iterdir()]
    assert len(copies) == 2 and all(c.name == source.name for c in copies)
    assert not any(c.exists() or c.parent.exists() for c in copies), "no local copy is left behind"
    assert sorted(p.name for p in out.iterdir()) == ["batch.json", source.stem], "nothing else in --out"

    folder = out / source.stem
    assert json.loads((folder / "facts.json").read_text()) == {"capture": url, "note": f"read {url}"}
    assert (folder / "report.html").read_text() == f"<td>{html.escape(url)}</td>"
    with (folder / "cells.csv").open(newline="") as handle:
        assert list(csv.reader(handle)) == [["capture", "cells"], [url, "0"]]
    assert (folder / "source.txt").read_text() == url
    saved = json.loads((folder / "result.json").read_text())
    assert saved["capture"] == url and saved["sources"] == [url] and saved["input"]["capture"] == url
    assert saved["width"] == 14 and (folder / "mean.txt").read_text() == "90.000 90.000 90.000"
    with write_batch_summary(out).open(newline="") as handle:
        assert [row["capture"] for row in csv.DictReader(handle)] == [url]


def scale_factory():
    """A job that reports the scale its capture's sidecar gives (None without one)."""
    from smearscope.tools.analyze import sidecar_scale

    def job(capture: Path, folder: Path) -> dict:
        return {"sidecar_um_per_px": sidecar_scale(capture), **colour_stats(capture, folder)}

    return job


def test_a_url_captures_scale_sidecar_comes_with_it(tmp_path, ray_cluster):
    sources = tmp_path / "in"
    sources.mkdir()
    for name in ("scaled", "plain"):
        (sources / f"{name}.png").write_bytes(cv2.imencode(".png", np.full((8, 8, 3), 50, np.uint8))[1].tobytes())
    (sources / "scaled.png.json").write_text('{"um_per_px": 0.42}')
    out = tmp_path / "out"
    urls = [f"file://{sources / 'scaled.png'}", f"file://{sources / 'plain.png'}"]
    summary = run_batch_ray(urls, out, scale_factory, num_actors=1, progress=False)

    assert summary.done == urls
    assert json.loads((out / "scaled" / "result.json").read_text())["sidecar_um_per_px"] == 0.42
    assert json.loads((out / "plain" / "result.json").read_text())["sidecar_um_per_px"] is None


def test_the_analyze_command_on_ray_names_a_url_capture_by_its_url(tmp_path, ray_cluster):
    from smearscope.tools.cli import main

    source = tmp_path / "in" / "field&1.png"
    source.parent.mkdir()
    source.write_bytes(cv2.imencode(".png", np.full((60, 80, 3), 210, np.uint8))[1].tobytes())
    url, out = f"file://{source}", tmp_path / "out"
    code = main(["analyze", url, "--out", str(out), "--engine", "ray", "--actors", "1", "--um-per-px", "0.5"])

    assert code == 0
    folder = out / source.stem
    assert f"<td>capture</td><td>{html.escape(url)}</td>" in (folder / "report.html").read_text()
    assert [image["file_name"] for image in json.loads((folder / "cells.coco.json").read_text())["images"]] == [url]
    assert json.loads((folder / "result.json").read_text())["capture"] == url
    with (out / "summary.csv").open(newline="") as handle:
        assert [row["capture"] for row in csv.DictReader(handle)] == [url]
    assert not any(b".tmp/" in data for data in tree(out).values()), "no output names the local copy"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_cli_engine_options_and_the_local_path(tmp_path):
    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    args = parser.parse_args(["--engine", "ray", "--address", "auto", "--actors", "3", "--gpus-per-actor", "0.5"])
    assert (args.engine, args.address, args.actors, args.gpus_per_actor) == ("ray", "auto", 3, 0.5)
    with pytest.raises(SystemExit):
        parser.parse_args(["--actors", "0"])

    captures = make_captures(tmp_path / "in", 2)
    manifest = tmp_path / "list.txt"
    manifest.write_text("in/c1.png\nin/c0.png\n")
    summary = run_with_engine(parser.parse_args([]), manifest, tmp_path / "out", colour_stats_factory, progress=False)
    assert summary.done == [str(captures[1]), str(captures[0])]
    with pytest.raises(ValueError, match="--actors only apply with --engine ray"):
        run_with_engine(parser.parse_args(["--actors", "2"]), manifest, tmp_path / "out", colour_stats_factory)


def test_ray_engine_without_ray_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray gives
    parser = argparse.ArgumentParser()
    add_engine_arguments(parser)
    make_captures(tmp_path / "in", 1)
    with pytest.raises(ValueError) as error:
        run_with_engine(parser.parse_args(["--engine", "ray"]), tmp_path / "in", tmp_path / "out", colour_stats_factory)
    assert str(error.value) == "the Ray engine needs Ray, which is not installed: pip install 'smearscope[ray]'"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options, error",
    [
        ({"num_actors": 0}, "number of actors must be at least 1, got 0"),
        ({"batch_size": 0}, "batch size must be at least 1, got 0"),
        ({"num_gpus_per_actor": -1}, "CPUs and GPUs per actor cannot be negative, got 1 and -1"),
        ({"max_attempts": 0}, "max_attempts must be at least 1, got 0"),
        ({"num_cpus_per_actor": 0, "num_gpus_per_actor": 1},
         "one worker needs 0 CPU and 1 GPU but the Ray cluster has 2 CPU and 0 GPU"),
    ],
)
def test_impossible_pools_are_refused_before_any_work(tmp_path, ray_cluster, options, error):
    make_captures(tmp_path / "in", 1)
    with pytest.raises(ValueError) as raised:
        run_batch_ray(tmp_path / "in", tmp_path / "out", colour_stats_factory, progress=False, **options)
    assert str(raised.value) == error
    assert not any((tmp_path / "out").glob("c0*")), "nothing was analysed"
