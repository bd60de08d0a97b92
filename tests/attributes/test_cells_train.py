"""A tiny real training run: drawn cells, the full pipeline, an attribute learnt above chance."""

from __future__ import annotations

import json

import pytest
import torch

from smearscope.attributes.evaluate import evaluate_cells
from smearscope.attributes.model import load_checkpoint
from smearscope.attributes.train import train_cells
from smearscope.attributes.train_config import load_cell_train_config
from smearscope.datasets.sources.wbcatt import load_wbcatt

COLOUR_OFF = ["augment.hed_scale=0", "augment.hed_shift=0", "augment.tint=0", "augment.saturation=0", "augment.jpeg_prob=0"]


def _config(root, *extra):
    return load_cell_train_config(None, [
        "model.arch=cellnet_xs", "model.input_size=32", "model.dropout=0", f"data.wbcatt_root={root}",
        "data.um_per_px.wbcatt=0.25", "optim.epochs=8", "optim.batch_size=16", "optim.lr=0.01", "optim.warmup_epochs=0.5",
        "optim.ema_decay=0.9", "threads=1", *COLOUR_OFF, *extra])


@pytest.mark.slow
def test_tiny_training_learns_the_cytoplasm_colour_and_resumes(wbcatt_folder, tmp_path):
    work = tmp_path / "run"
    checkpoint = train_cells(_config(wbcatt_folder), work)
    assert checkpoint == work / "best.pt"
    for name in ("last.pt", "metrics.json", "config.yaml", "load_issues.txt"):
        assert (work / name).is_file(), name
    assert list((work / "cache").glob("wbcatt-train-*.pt")) and list((work / "cache").glob("wbcatt-val-*.pt"))
    raw = torch.load(checkpoint, weights_only=True)
    assert raw["config"]["input_size"] == 32 and raw["config"]["train_data"]["cells"] == 64
    trained = raw["config"]["trained_heads"]
    assert "wbcatt_cytoplasm_colour" in trained and not any(h.startswith("leukemiaattri") for h in trained)

    report = evaluate_cells(checkpoint, load_wbcatt(wbcatt_folder, "val").records, tmp_path / "eval", um_per_px={"wbcatt": 0.25})
    overall = report["overall"]
    assert overall["attributes"]["wbcatt_cytoplasm_colour"]["accuracy"] >= 0.8  # chance: 0.5
    assert overall["cell_type"]["accuracy"] >= 0.8
    assert (tmp_path / "eval" / "evaluation.md").read_text().startswith("# Cell model evaluation")
    history = json.loads((work / "metrics.json").read_text())["history"]
    assert len(history) == 8 and "wbcatt-val" in history[-1]["val"]

    # the finished run resumes as a no-op, also with another thread count; another config in
    # the same folder is refused
    assert train_cells(_config(wbcatt_folder), work) == checkpoint
    assert train_cells(_config(wbcatt_folder, "threads=2"), work) == checkpoint
    assert len(json.loads((work / "metrics.json").read_text())["history"]) == 8
    with pytest.raises(ValueError, match="another config"):
        train_cells(_config(wbcatt_folder, "optim.lr=0.02"), work)
    assert load_checkpoint(checkpoint).config.crop_um == 22.0


def test_no_source_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no training cells"):
        train_cells(load_cell_train_config(None, ["model.arch=cellnet_xs", "model.input_size=32"]), tmp_path / "run")


def test_shipped_config_matches_the_defaults():
    from importlib import resources

    from smearscope.attributes.train_config import CellTrainConfig

    path = resources.files("smearscope.configs").joinpath("cells.yaml")
    assert load_cell_train_config(str(path)) == CellTrainConfig()


def test_zoomed_crops_lose_only_their_size_labels():
    from smearscope.attributes.train import _without_size_labels

    targets = torch.tensor([[1, 0, 2], [0, 1, 1], [1, 1, 0]])
    zoom = torch.tensor([1.05, 1.3, 0.7])
    out = _without_size_labels(targets, [1], zoom, tolerance=0.1)
    assert out.tolist() == [[1, 0, 2], [0, -1, 1], [1, -1, 0]]
    assert targets[1, 1] == 1  # the input is not modified
