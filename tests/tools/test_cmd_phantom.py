"""``smearscope synth`` and ``smearscope contact-sheet`` from the command line."""

from __future__ import annotations

import argparse
import json

import pytest

from smearscope.tools import cmd_phantom


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="smearscope")
    cmd_phantom.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.run(args)


def test_synth_writes_the_layout_and_a_capture(tmp_path, capsys):
    code = run(["synth", "--out", str(tmp_path), "--fields", "3", "--domains", "H_100X_C1,L_10X_C2",
                "--size", "96", "--seed", "2", "--capture", "400x300", "--capture-domain", "L_40X_C1"])
    assert code == 0
    root = tmp_path / "LeukemiaAttri_Dataset"
    assert sorted(p.name for p in root.iterdir()) == ["H_100X_C1", "L_10X_C2"]
    assert len(list(root.glob("*/images/*/*.png"))) == 6
    capture = tmp_path / "capture" / "phantom_capture_L_40X_C1.png"
    assert capture.is_file()
    coco = json.loads(capture.with_suffix(".json").read_text())
    assert coco["images"][0]["width"] == 400 and coco["images"][0]["height"] == 300
    manifest = json.loads((tmp_path / "phantom_manifest.json").read_text())
    assert manifest["seed"] == 2 and manifest["domains"] == ["H_100X_C1", "L_10X_C2"]
    assert str(root) in capsys.readouterr().out


def test_contact_sheet_has_a_row_per_class_and_a_column_per_domain(tmp_path):
    from smearscope.datasets.io import read_image

    out = tmp_path / "sheet.png"
    assert run(["contact-sheet", "--out", str(out), "--domains", "H_100X_C1,L_10X_C2", "--tile", "40"]) == 0
    sheet = read_image(out)
    assert sheet.shape == (34 + 14 * 40, 190 + 2 * 40, 3)
    tiles = sheet[34:, 190:]
    assert tiles.std() > 10 and (tiles.mean(axis=2) < 200).any()


@pytest.mark.parametrize("argv, message", [
    (["contact-sheet", "--out", "sheet.jpg"], "written as PNG"),
    (["synth", "--out", "x", "--domains", "H_200X_C1"], "unknown magnification"),
])
def test_bad_requests_raise_value_errors(tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        run(argv)


def test_capture_size_must_be_w_by_h():
    with pytest.raises(SystemExit):
        run(["synth", "--out", "x", "--capture", "6000-4000"])
