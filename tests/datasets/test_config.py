"""Typed configs: YAML plus key=value overrides, unknown keys rejected, resolved config saved."""

from dataclasses import dataclass, field

import pytest

from smearscope.datasets.config import load_config, save_config


@dataclass
class Inner:
    size: int = 64
    names: list[str] = field(default_factory=lambda: ["a"])


@dataclass
class Outer:
    epochs: int = 3
    lr: float = 0.1
    amp: bool = False
    note: str | None = None
    inner: Inner = field(default_factory=Inner)


def test_yaml_overrides_and_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 5\ninner:\n  size: 32\n")
    cfg = load_config(Outer, path, ["lr=0.01", "inner.names=x,y", "amp=true"])
    assert (cfg.epochs, cfg.lr, cfg.amp, cfg.inner.size, cfg.inner.names) == (5, 0.01, True, 32, ["x", "y"])
    saved = save_config(cfg, tmp_path / "out" / "resolved.yaml")
    assert load_config(Outer, saved) == cfg


@pytest.mark.parametrize("overrides, message", [
    (["epoch=3"], "unknown key(s) epoch"),
    (["inner.colour=red"], "unknown key(s) colour"),
    (["epochs=many"], "expected int"),
    (["amp=perhaps"], "expected true or false"),
    (["epochs"], "not of the form key=value"),
])
def test_bad_overrides_are_errors(overrides, message):
    with pytest.raises(ValueError) as info:
        load_config(Outer, None, overrides)
    assert message in str(info.value)


def test_missing_and_malformed_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="config file not found"):
        load_config(Outer, tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1,\n")
    with pytest.raises(ValueError, match="bad.yaml: not valid YAML"):
        load_config(Outer, bad)
