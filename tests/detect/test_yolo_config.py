"""Detector training config: the shipped YAML, overrides, path resolution and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smearscope.datasets.config import save_config
from smearscope.detect.config import DataSource, DetectorConfig, default_config_path, load_detector_config


def test_shipped_config_loads_with_documented_defaults():
    config = load_detector_config(default_config_path())
    assert config.model == "yolo11n.yaml"
    assert config.um_per_px == pytest.approx(0.3125)
    assert config.class_mode == "wbc" and config.class_names == ["wbc"]
    assert set(config.sources) == {"phantom", "phantom_10x", "bccd", "txl_raabin"}
    assert {d.split("_")[1] for d in config.sources["phantom"].domains} == {"100X", "40X"}
    assert {d.split("_")[1] for d in config.sources["phantom_10x"].domains} == {"10X"}
    assert config.sources["phantom_10x"].generate_size * 4 == config.sources["phantom"].generate_size
    assert config.sources["phantom"].generate == "phantom" and config.sources["phantom"].path == ""
    assert config.sources["phantom"].splits == {"train": "train", "val": "test"}
    assert config.sources["bccd"].format == "voc"
    assert config.sources["txl_raabin"].format == "yolo"
    assert config.augment.blur == pytest.approx(0.2)


def test_overrides_reach_nested_sources_and_augmentation():
    config = load_detector_config(default_config_path(), [
        "epochs=3", "imgsz=320", "augment.hsv_h=0.1", "sources.bccd.path=/elsewhere/bccd",
        "sources.phantom.enabled=false", "sources.phantom_10x.enabled=false", "sources.txl_raabin.splits={val: val}",
        "sources.bccd.um_per_px=0.07",
        "class_mode=wbc+artifact",
    ])
    assert (config.epochs, config.imgsz, config.augment.hsv_h) == (3, 320, 0.1)
    assert config.resolve_path(config.sources["bccd"].path) == Path("/elsewhere/bccd")
    assert set(config.enabled_sources()) == {"bccd", "txl_raabin"}
    assert config.sources["txl_raabin"].split("train") == "" and config.sources["txl_raabin"].split("val") == "val"
    assert config.sources["bccd"].um_per_px == pytest.approx(0.07)
    assert config.class_names == ["wbc", "artifact"]


def test_relative_paths_resolve_against_data_root_then_cwd(tmp_path):
    config = load_detector_config(default_config_path(), ["data_root=data"])
    assert config.resolve_path("bccd", cwd=tmp_path) == tmp_path / "data" / "bccd"
    absolute = load_detector_config(default_config_path(), [f"data_root={tmp_path / 'x'}"])
    assert absolute.resolve_path("bccd", cwd=Path("/")) == tmp_path / "x" / "bccd"


def test_saved_config_loads_back_identically(tmp_path):
    config = load_detector_config(default_config_path(), ["epochs=7", "sources.bccd.repeat=2"])
    saved = save_config(config, tmp_path / "detector.yaml")
    again = load_detector_config(saved)
    assert again == config
    assert yaml.safe_load(saved.read_text())["sources"]["bccd"]["repeat"] == 2


@pytest.mark.parametrize("override, message", [
    ("bogus=1", "unknown key(s) bogus"),
    ("augment.sharpen=0.5", "augment: unknown key(s) sharpen"),
    ("sources.bccd.colour=red", "sources.bccd: unknown key(s) colour"),
    ("sources.bccd.format=xml", "sources.bccd.format: 'xml' is not one of"),
    ("sources.bccd.splits={test: test}", "sources.bccd.splits: unknown role(s) test"),
    ("sources.bccd.repeat=0", "sources.bccd.repeat: must be at least 1"),
    ("sources.phantom.generate=null", "sources.phantom.path: empty, and no generator"),
    ("class_mode=rbc", "class_mode: 'rbc' is not one of"),
    ("imgsz=300", "imgsz: must be a positive multiple of 32"),
    ("epochs=many", "epochs: expected int"),
    ("augment.fliplr=1.5", "augment.fliplr: is a probability"),
    ("um_per_px=0", "um_per_px: must be positive"),
    ("time_hours=-1", "time_hours: must not be negative"),
    ("sources.phantom.generate_fields=0", "sources.phantom.generate_fields: must be at least 1"),
    ("sources.phantom.generate_size=32", "sources.phantom.generate_size: must be at least 64 pixels"),
])
def test_bad_values_raise_one_line_errors_naming_file_and_key(override, message):
    with pytest.raises(ValueError) as info:
        load_detector_config(default_config_path(), [override])
    text = str(info.value)
    assert message in text
    assert text.startswith(str(default_config_path()))
    assert "\n" not in text


def test_config_without_file_uses_defaults_and_direct_construction_checks_sources():
    assert load_detector_config(None, ["epochs=2"]).epochs == 2
    with pytest.raises(ValueError, match="sources.x: expected a mapping"):
        DetectorConfig(sources={"x": "not a mapping"})
    assert DetectorConfig(sources={"x": DataSource(format="voc", path="p")}).sources["x"].path == "p"
