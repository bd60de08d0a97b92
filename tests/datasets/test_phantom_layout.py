"""A phantom set written in the LeukemiaAttri layout reads back cell for cell through the reader."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from smearscope.datasets.phantom import generate_leukemiaattri
from smearscope.datasets.phantom.layout import plan_fields
from smearscope.datasets.phantom.params import phantom_config

DOMAINS = "H_100X_C1,L_40X_C2,H_10X_C2"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    from smearscope.datasets.phantom.domains import parse_domains
    from smearscope.datasets.phantom.layout import render_plans

    out = tmp_path_factory.mktemp("phantom")
    root = generate_leukemiaattri(out, fields=8, domains=DOMAINS, seed=11, size=128)
    # The same records, rendered again in memory, are the ground truth to compare with.
    plans = plan_fields(8, 11)
    expected = render_plans(plans, tmp_path_factory.mktemp("again") / "x", parse_domains(DOMAINS), 128, progress=False)
    return root, expected


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _key(record) -> tuple[str, str]:
    return record.domain.name, Path(record.path).name


@pytest.mark.parametrize("prefer", ["json", "txt"])
def test_reader_finds_every_cell_with_class_and_attributes(written, prefer):
    from smearscope.datasets.formats.leukemiaattri import load_leukemiaattri

    root, expected = written
    result = load_leukemiaattri(root, prefer=prefer)
    assert result.issues == []
    loaded = {_key(r): r for r in result.records}
    assert set(loaded) == {_key(r) for r in expected}
    assert sum(len(r) for r in expected) > 8
    tolerance = 0.01 if prefer == "json" else 128 * 2e-6 + 1e-3
    for want in expected:
        got = loaded[_key(want)]
        assert got.domain.source == "leukemiaattri"
        assert (got.domain.patient, got.domain.diagnosis, got.domain.split) == (
            want.domain.patient, want.domain.diagnosis, want.domain.split)
        assert len(got) == len(want)
        for i, box in enumerate(want.boxes_xyxy):
            j = int(np.argmin(np.abs(got.boxes_xyxy - box).max(axis=1)))
            assert np.abs(got.boxes_xyxy[j] - box).max() < tolerance
            assert got.source_labels[j] == want.source_labels[i]
            assert got.cell_types[j] == want.cell_types[i]
            for name, values in want.attributes.items():
                assert got.attributes[name][j] == values[i], (want.path, name)


def test_layout_names_patients_diagnoses_and_disjoint_splits(written):
    root, expected = written
    assert root.name == "LeukemiaAttri_Dataset"
    assert sorted(p.name for p in root.iterdir()) == sorted(DOMAINS.split(","))
    pattern = re.compile(r"^(\d+)_(\d+)_1000_(ALL|AML|CML|CLL|APML)\.png$")
    split_of: dict[str, set[str]] = {}
    mixes = phantom_config().diagnoses
    for record in expected:
        match = pattern.match(Path(record.path).name)
        assert match, record.path
        assert match[3] == record.domain.diagnosis
        assert set(record.cell_types) <= set(mixes[match[3]])  # cells drawn fit the diagnosis
        split_of.setdefault(match[1], set()).add(record.domain.split)
        assert (root / record.domain.name / "images" / record.domain.split / Path(record.path).name).is_file()
    assert all(len(splits) == 1 for splits in split_of.values())
    assert {s for splits in split_of.values() for s in splits} == {"train", "test"}
    for domain in DOMAINS.split(","):
        assert (root / domain / "json_labels" / "train.json").is_file()
        lines = [ln for p in (root / domain / "txt_labels" / "AttriDet" / "train").glob("*.txt")
                 for ln in p.read_text().splitlines() if ln.strip()]
        assert lines and all(len(ln.split()) == 12 for ln in lines)


def test_same_seed_writes_the_same_bytes(tmp_path):
    first = generate_leukemiaattri(tmp_path / "a", fields=2, domains="H_100X_C2,L_10X_C1", seed=5, size=96)
    second = generate_leukemiaattri(tmp_path / "b", fields=2, domains="H_100X_C2,L_10X_C1", seed=5, size=96)
    assert _hashes(first) == _hashes(second)
    assert len(_hashes(first)) == 2 * (2 + 1 + 2)  # per domain: 2 images, 1 json, 2 txt


@pytest.mark.parametrize("kwargs, message", [
    ({"fields": 0}, "at least 1"),
    ({"fields": 2, "splits": ("train", "dev")}, "must be distinct names"),
    ({"fields": 2, "test_fraction": 1.0}, "test_fraction"),
    ({"fields": 2, "size": 32}, "too small"),
    ({"fields": 2, "domains": "H_100X_C3"}, "unknown camera"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_leukemiaattri(tmp_path, seed=0, **kwargs)
    assert not any(tmp_path.iterdir())


def test_plans_are_patient_disjoint_with_the_requested_share():
    plans = plan_fields(200, 3, ("train", "val", "test"), 0.2)
    per_patient: dict[str, set[str]] = {}
    for plan in plans:
        per_patient.setdefault(plan.patient, set()).add(plan.split)
    assert all(len(s) == 1 for s in per_patient.values())
    shares = {s: sum(p.split == s for p in plans) / len(plans) for s in ("train", "val", "test")}
    assert 0.15 <= shares["test"] <= 0.3 and 0.15 <= shares["val"] <= 0.3
    assert len({p.file_name for p in plans}) == 200
