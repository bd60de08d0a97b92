"""Analysis results into FiftyOne: ``analyze --fiftyone`` and ``smearscope predict``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from smearscope.datasets.records import Domain, ImageRecord
from smearscope.datasets.schema import attribute_specs
from smearscope.tools.batch import DONE_FILE, BatchSummary, run_batch


def result_to_prediction(data: dict):
    """One capture's ``result.json`` data as an ImageRecord plus per-cell extras."""
    from smearscope.datasets.fiftyone_bridge import CellExtras

    cells = data.get("cells", [])
    known = attribute_specs()
    names = sorted({n for c in cells for n in c["attributes"] if n in known})
    record = ImageRecord(
        path=data["capture"],
        width=int(data["width"]),
        height=int(data["height"]),
        domain=Domain(source="smearscope", um_per_px=data.get("um_per_px")),
        boxes_xyxy=np.array([c["box_xyxy"] for c in cells], dtype=np.float64).reshape(-1, 4),
        cell_types=[c["cell_type"] for c in cells],
        attributes={n: [c["attributes"].get(n, "unknown") for c in cells] for n in names},
        scores=np.array([c["detection_score"] for c in cells], dtype=np.float64),
    )
    extras = [
        CellExtras(
            type_prob=c["type_probability"],
            attribute_probs={n: p for n, p in c["attribute_probabilities"].items() if n in known},
            review=bool(c["review"]),
            rationale=c["rationale"],
        )
        for c in cells
    ]
    return record, extras


def add_results_to_fiftyone(out_dir: str | Path, name: str, field: str = "predictions") -> int:
    """Add every finished capture under ``out_dir`` to dataset ``name`` (created if needed)."""
    from smearscope.datasets.fiftyone_bridge import add_predictions, open_dataset

    records, extras = [], []
    for marker in sorted(Path(out_dir).glob(f"[!.]*/{DONE_FILE}")):
        record, cell_extras = result_to_prediction(json.loads(marker.read_text(encoding="utf-8")))
        records.append(record)
        extras.append(cell_extras)
    dataset = open_dataset(name, create=True)
    _ensure_samples(dataset, [r.path for r in records])
    summary = add_predictions(dataset, records, field=field, extras=extras)
    for issue in summary.issues:
        print(f"skipped: {issue}")
    return len(records) - len(summary.issues)


def _ensure_samples(dataset, paths: list[str]) -> None:
    """Add a sample for each capture path the dataset does not hold yet."""
    import os

    import fiftyone as fo

    present = set(dataset.values("filepath")) if len(dataset) else set()
    missing = [os.path.abspath(p) for p in paths if os.path.abspath(p) not in present]
    if missing:
        dataset.add_samples([fo.Sample(filepath=p) for p in missing])


def predict_dataset(name: str, options, work_dir: str | Path, field: str = "predictions") -> BatchSummary:
    """Analyse every image of FiftyOne dataset ``name`` and store the cells in ``field``."""
    from smearscope.datasets.fiftyone_bridge import add_predictions, open_dataset
    from smearscope.tools.analyze import make_capture_job

    dataset = open_dataset(name)
    captures = [Path(p) for p in sorted(set(dataset.values("filepath")))]
    summary = run_batch(captures, work_dir, make_capture_job(options))
    records, extras = [], []
    for marker in sorted(Path(work_dir).glob(f"[!.]*/{DONE_FILE}")):
        data = json.loads(marker.read_text(encoding="utf-8"))
        if data.get("capture") in {str(c) for c in captures}:
            record, cell_extras = result_to_prediction(data)
            records.append(record)
            extras.append(cell_extras)
    add_predictions(dataset, records, field=field, extras=extras)
    return summary
