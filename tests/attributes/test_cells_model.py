"""The multi-head model: shapes, gradients to every head, self-describing checkpoints."""

from __future__ import annotations

import pytest
import torch

from smearscope.attributes.model import (
    CellModelConfig,
    count_parameters,
    create_model,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from smearscope.attributes.schema import TYPE_HEAD, default_heads, default_type_vocabulary


def test_forward_gives_logits_for_every_head():
    model = create_model("cellnet_xs", input_size=32)
    outputs = model(torch.rand(3, 3, 32, 32))
    heads = default_heads()
    assert list(outputs) == list(heads)
    for name, values in heads.items():
        assert outputs[name].shape == (3, len(values))
    features = model.forward_features(torch.rand(2, 3, 32, 32))
    assert features.shape[:2] == (2, model.num_features) and features.shape[2] == 32 // 16
    assert model.forward_heads(features, pre_logits=True).shape == (2, model.num_features)


def test_every_head_gets_a_gradient():
    model = create_model("cellnet_xs", input_size=32)
    outputs = model(torch.rand(4, 3, 32, 32))
    sum(v.logsumexp(dim=1).sum() for v in outputs.values()).backward()
    for name, head in model.heads.items():
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0, name
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_default_model_is_small_and_uses_group_norm():
    model = create_model()
    assert 0.3e6 < count_parameters(model) < 3e6
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in model.modules())


def test_type_head_covers_fine_wbc_types_and_non_wbc_objects():
    vocabulary = default_type_vocabulary()
    assert "segmented_neutrophil" in vocabulary and "lymphoblast" in vocabulary and "artifact" in vocabulary
    assert "neutrophil" not in vocabulary and "blast" not in vocabulary  # coarse types are partial labels


def test_checkpoint_round_trip_reproduces_outputs(tmp_path):
    model = create_model("cellnet_xs", input_size=32, crop_um=20.0, trained_heads=[TYPE_HEAD], train_data={"cells": 3}).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # not the initial weights
    path = save_checkpoint(model, tmp_path / "m.pt", metrics={"score": 0.5})
    raw = torch.load(path, weights_only=True)
    assert raw["config"]["crop_um"] == 20.0 and raw["metrics"] == {"score": 0.5}
    loaded = load_checkpoint(path)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        before, after = model(x), loaded(x)
    for name in before:
        torch.testing.assert_close(before[name], after[name], rtol=0, atol=0)
    assert loaded.config == model.config


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"arch": "resnet999"}, "unknown cell model"),
        ({"input_size": 30}, "multiple of 8"),
        ({"heads": {"x": ["a"]}}, "cell_type"),
        ({"crop_um": 0.0}, "positive"),
    ],
)
def test_bad_model_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CellModelConfig(**kwargs)


def test_foreign_or_missing_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        read_checkpoint(tmp_path / "none.pt")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a smearscope cell model"):
        load_checkpoint(other)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(broken)


def test_white_balance_removes_a_lamp_colour_cast():
    from smearscope.attributes.model import white_balance

    scene = torch.full((1, 3, 20, 20), 0.9)
    scene[:, :, 5:15, 5:15] = torch.tensor([0.5, 0.3, 0.6]).view(1, 3, 1, 1)  # a cell on a plain background
    cast = scene * torch.tensor([1.0, 0.85, 0.7]).view(1, 3, 1, 1)  # a yellow lamp
    torch.testing.assert_close(white_balance(cast), white_balance(scene), atol=1e-6, rtol=0)
    assert float(white_balance(scene)[0, :, 0, 0].min()) == 1.0
