"""A phantom data set in the LeukemiaAttri folder layout: every field rendered in every domain.

Each field is one slide region of one synthetic patient; it is rendered in each requested
domain at the same place, so its cells carry the same classes and attributes everywhere
(as LeukemiaAttri's labels, annotated at 100X, were transferred to the other domains).
Splits are patient-disjoint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from smearscope.datasets.io import write_bytes_atomic, write_json_atomic
from smearscope.datasets.phantom.domains import parse_domains
from smearscope.datasets.phantom.field import render_field
from smearscope.datasets.phantom.params import phantom_config
from smearscope.datasets.phantom.slide import make_slide
from smearscope.datasets.records import SPLITS, ImageRecord

DATASET_FOLDER = "LeukemiaAttri_Dataset"
FIELDS_PER_PATIENT = (3, 12)


@dataclasses.dataclass(frozen=True)
class FieldPlan:
    """One slide region: its patient, diagnosis, index within the patient, split and seed."""

    patient: str
    diagnosis: str
    index: int
    split: str
    seed: int

    @property
    def file_name(self) -> str:
        return f"{self.patient}_{self.index}_1000_{self.diagnosis}.png"


def plan_fields(fields: int, seed: int, splits: tuple[str, ...] = ("train", "test"), test_fraction: float = 0.2) -> list[FieldPlan]:
    """Patients, diagnoses and patient-disjoint splits for ``fields`` slide regions.

    The last split (and any between the first and the last) gets about ``test_fraction`` of
    the fields, the first split the rest.
    """
    if fields < 1:
        raise ValueError(f"fields must be at least 1, not {fields}")
    if not splits or any(s not in SPLITS for s in splits) or len(set(splits)) != len(splits):
        raise ValueError(f"splits {splits!r} must be distinct names from {', '.join(SPLITS)}")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), not {test_fraction}")
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 99])
    diagnoses = sorted(phantom_config().diagnoses)
    patients: list[tuple[str, str, int]] = []
    left = fields
    while left > 0:
        count = min(left, int(rng.integers(FIELDS_PER_PATIENT[0], FIELDS_PER_PATIENT[1] + 1)))
        patients.append((str(len(patients) + 1), diagnoses[int(rng.integers(len(diagnoses)))], count))
        left -= count
    split_of = {p[0]: splits[0] for p in patients}
    order = [patients[i] for i in rng.permutation(len(patients))]
    for split in splits[1:]:
        taken = 0
        while order and taken < round(test_fraction * fields) and len(order) > 1:
            patient = order.pop()
            split_of[patient[0]] = split
            taken += patient[2]
    plans = []
    for patient, diagnosis, count in patients:
        for index in range(1, count + 1):
            field_seed = int(np.random.SeedSequence([seed & 0xFFFFFFFF, len(plans)]).generate_state(1)[0])
            plans.append(FieldPlan(patient, diagnosis, index, split_of[patient], field_seed))
    return plans


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed")
    write_bytes_atomic(path, data.tobytes())


def render_plans(plans: list[FieldPlan], root: Path, domains, size: int, progress: bool) -> list[ImageRecord]:
    """Render every planned field in every domain to ``root/<Domain>/images/<split>/`` and return the records."""
    records = []
    bar = tqdm(total=len(plans) * len(domains), desc="rendering phantom fields", unit="image", disable=not progress)
    try:
        for plan in plans:
            slide = make_slide(plan.seed, diagnosis=plan.diagnosis, domains=[d.name for d in domains], field_px=size)
            for spec in domains:
                path = root / spec.name / "images" / plan.split / plan.file_name
                image, record = render_field(slide, spec, size, path=str(path))
                _write_png(path, image)
                domain = dataclasses.replace(record.domain, patient=plan.patient, split=plan.split)
                records.append(dataclasses.replace(record, domain=domain, info={"phantom_seed": plan.seed}))
                bar.update(1)
    finally:
        bar.close()
    return records


def generate_leukemiaattri(
    out_dir: str | Path,
    fields: int,
    domains: str | list[str] | tuple[str, ...] | None = None,
    seed: int = 0,
    splits: tuple[str, ...] = ("train", "test"),
    test_fraction: float = 0.2,
    size: int = 640,
    progress: bool = False,
) -> Path:
    """Write ``fields`` phantom fields, each in every domain (default all twelve), as LeukemiaAttri.

    Layout under ``out_dir/LeukemiaAttri_Dataset/``: ``<Domain>/images/<split>/*.png``
    (``{patient}_{index}_1000_{DX}.png``), ``<Domain>/json_labels/<split>.json`` (COCO with
    the seven attribute keys) and ``<Domain>/txt_labels/AttriDet/<split>/*.txt``. Returns
    the dataset folder. The same seed and arguments give the same bytes.
    """
    from smearscope.datasets.formats.leukemiaattri import save_leukemiaattri

    if size < 64:
        raise ValueError(f"field size {size} px is too small (at least 64)")
    specs = parse_domains(domains)
    root = Path(out_dir) / DATASET_FOLDER
    plans = plan_fields(fields, seed, tuple(splits), test_fraction)
    records = render_plans(plans, root, specs, size, progress)
    save_leukemiaattri(records, root)
    manifest = {"generator": "smearscope.datasets.phantom", "seed": seed, "fields": fields, "size": size,
                "domains": [d.name for d in specs], "splits": list(splits), "test_fraction": test_fraction}
    write_json_atomic(Path(out_dir) / "phantom_manifest.json", manifest)
    return root
