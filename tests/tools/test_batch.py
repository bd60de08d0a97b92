"""Batch runs: failures listed and skipped, finished captures skipped on re-run, atomic output."""

import json

import cv2
import numpy as np
import pytest

from smearscope.datasets.io import read_image, write_text_atomic
from smearscope.tools.batch import collect_captures, output_names, run_batch


def mean_colour(capture, folder):
    """A real per-capture job: read the image and write its mean colour."""
    image = read_image(capture)
    write_text_atomic(folder / "mean.txt", " ".join(f"{v:.1f}" for v in image.reshape(-1, 3).mean(0)))
    return {"pixels": int(image.shape[0] * image.shape[1])}


@pytest.fixture
def captures(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), np.full((20, 30, 3), 100, np.uint8))
    cv2.imwrite(str(folder / "sub" / "a.png"), np.full((10, 10, 3), 50, np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not a capture")
    return folder


def test_bad_capture_is_listed_and_the_rest_goes_on(tmp_path, captures):
    files = collect_captures([captures])
    assert [p.name for p in files] == ["a.png", "broken.jpg", "a.png"]
    before = {p: p.read_bytes() for p in files}
    summary = run_batch(files, tmp_path / "out", mean_colour, progress=False)
    assert len(summary.done) == 2
    assert list(summary.failed) == [str(captures / "broken.jpg")]
    assert "broken.jpg: truncated image file" in summary.failed[str(captures / "broken.jpg")]
    assert {p: p.read_bytes() for p in files} == before, "inputs must never change"
    folders = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert len(folders) == 2 and all(f.startswith("a-") for f in folders), "colliding stems get distinct folders"
    assert json.loads((tmp_path / "out" / "batch.json").read_text())["failed"]


def test_rerun_skips_finished_captures_and_redoes_changed_ones(tmp_path, captures):
    files = [captures / "a.png"]
    run_batch(files, tmp_path / "out", mean_colour, progress=False)
    again = run_batch(files, tmp_path / "out", mean_colour, progress=False)
    assert again.skipped == [str(files[0])] and again.done == []
    cv2.imwrite(str(files[0]), np.full((20, 31, 3), 10, np.uint8))
    third = run_batch(files, tmp_path / "out", mean_colour, progress=False)
    assert third.done == [str(files[0])]
    assert (tmp_path / "out" / "a" / "mean.txt").read_text().startswith("10.0")


def test_interrupted_capture_leaves_no_partial_result(tmp_path, captures):
    def dies_half_way(capture, folder):
        (folder / "half.txt").write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch([captures / "a.png"], tmp_path / "out", dies_half_way, progress=False)
    assert not (tmp_path / "out" / "a").exists()
    summary = run_batch([captures / "a.png"], tmp_path / "out", mean_colour, progress=False)
    assert summary.done == [str(captures / "a.png")]


def test_missing_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="nothing.png: no such file or folder"):
        collect_captures([tmp_path / "nothing.png"])


def test_output_names_are_stems_unless_they_collide(tmp_path):
    names = output_names([tmp_path / "x" / "a.png", tmp_path / "b.png"])
    assert sorted(names.values()) == ["a", "b"]


def test_a_later_run_never_replaces_another_captures_result(tmp_path, captures):
    run_batch([captures / "a.png"], tmp_path / "out", mean_colour, progress=False)
    second = run_batch([captures / "sub" / "a.png"], tmp_path / "out", mean_colour, progress=False)
    assert second.done == [str(captures / "sub" / "a.png")]
    folders = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert folders[0] == "a" and folders[1].startswith("a-") and len(folders) == 2
    assert (tmp_path / "out" / "a" / "mean.txt").read_text().startswith("100.0")


def test_output_folders_inside_the_input_are_not_captures(tmp_path, captures):
    run_batch([captures / "a.png"], captures / "results", mean_colour, progress=False)
    (captures / "results" / "a" / "overlay.png").write_bytes((captures / "a.png").read_bytes())
    assert not any("results" in p.parts for p in collect_captures([captures]))
