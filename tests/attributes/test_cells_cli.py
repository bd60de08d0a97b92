"""``smearscope train-cells`` and ``evaluate-cells`` end to end on drawn cells."""

from __future__ import annotations

import json

from smearscope.tools.cli import main

TINY = ["model.arch=cellnet_xs", "model.input_size=32", "optim.epochs=1", "optim.batch_size=16", "threads=1",
        "data.um_per_px.wbcatt=0.25"]


def test_train_then_evaluate_from_the_command_line(wbcatt_folder, tmp_path, capsys):
    config = tmp_path / "cells.yaml"
    config.write_text("optim:\n  lr: 0.005\n")
    work = tmp_path / "run"
    assert main(["train-cells", str(config), f"data.wbcatt_root={wbcatt_folder}", *TINY, "--work", str(work)]) == 0
    assert f"checkpoint: {work / 'best.pt'}" in capsys.readouterr().out
    assert "lr: 0.005" in (work / "config.yaml").read_text()

    out = tmp_path / "eval"
    code = main(["evaluate-cells", str(work / "best.pt"), "--wbcatt", str(wbcatt_folder), "--um-per-px", "0.25",
                 "--out", str(out), "--name", "val"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "cells 32: type accuracy" in printed
    report = json.loads((out / "val.json").read_text())
    assert report["cells"] == 32 and set(report["by_source"]) == {"wbcatt"}
    assert "wbcatt_cytoplasm_colour" in report["overall"]["attributes"]
    assert (out / "val.md").is_file()


def test_bad_inputs_give_one_line_errors(wbcatt_folder, tmp_path, capsys):
    assert main(["evaluate-cells", str(tmp_path / "none.pt"), "--wbcatt", str(wbcatt_folder), "--out", str(tmp_path)]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    config = tmp_path / "cells.yaml"
    config.write_text("optim:\n  epochz: 3\n")
    assert main(["train-cells", str(config), "--work", str(tmp_path / "run")]) == 1
    assert "unknown key(s) epochz" in capsys.readouterr().err
