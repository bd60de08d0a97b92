"""One table over a batch: each capture's differential as a row of summary.csv."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from smearscope.datasets.io import write_text_atomic
from smearscope.tools.batch import DONE_FILE

FIXED_COLUMNS = ("capture", "folder", "total_wbc", "blast_percent", "review_count", "um_per_px", "scale_source", "flags")


def write_batch_summary(out_dir: str | Path) -> Path:
    """Write ``out_dir/summary.csv`` from every finished capture folder; return its path."""
    out_dir = Path(out_dir)
    rows = []
    for marker in sorted(out_dir.glob(f"[!.]*/{DONE_FILE}")):
        data = json.loads(marker.read_text(encoding="utf-8"))
        diff = data.get("differential", {})
        rows.append({
            "capture": data.get("capture", ""),
            "folder": marker.parent.name,
            "total_wbc": diff.get("total_wbc", 0),
            "blast_percent": diff.get("blast_percent", 0.0),
            "review_count": diff.get("review_count", 0),
            "um_per_px": round(float(data.get("um_per_px", 0.0)), 5),
            "scale_source": data.get("scale_source", ""),
            "flags": " | ".join(diff.get("flags", [])),
            **{f"{t} %": p for t, p in diff.get("percent", {}).items()},
        })
    type_columns = sorted({k for row in rows for k in row} - set(FIXED_COLUMNS))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(FIXED_COLUMNS) + type_columns, restval=0)
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(out_dir / "summary.csv", buffer.getvalue())
