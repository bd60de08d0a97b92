"""The per-capture HTML report: overlay, differential table and chart, cell gallery.

The gallery shows at most ``GALLERY_PER_TYPE`` cells of each type (flagged cells first) as
small JPEG thumbnails, so that a slide with tens of thousands of cells gives a report of
bounded size; it says how many cells of each type it leaves out.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from smearscope.datasets.io import write_text_atomic
from smearscope.tools.differential import NRBC_TYPE, Differential
from smearscope.tools.results import GROUP_COLOURS, CaptureResult, CellResult

GALLERY_PER_TYPE = 48  # gallery cards per cell type, flagged cells first
THUMBNAIL_SIDE = 96  # pixels; the side a card shows
THUMBNAIL_QUALITY = 85  # JPEG quality of the thumbnails

STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1300px}
h1{font-size:22px} h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
.flags li{color:#a00} .facts td{text-align:left}
.overlay{max-width:100%;border:1px solid #999}
.gallery{display:flex;flex-wrap:wrap;gap:8px}
.cell{width:200px;border:1px solid #ccc;padding:4px;font-size:12px}
.cell.review{border:2px solid #d00;background:#fff4f4}
.cell img{width:96px;height:96px;image-rendering:pixelated;float:left;margin-right:6px}
.cell .type{font-weight:600}
.legend{margin:6px 0;font-size:13px} .key{margin-right:14px}
.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
"""


def thumbnail_jpeg(crop: np.ndarray, side: int = THUMBNAIL_SIDE) -> bytes:
    """A small JPEG of a cell crop (RGB uint8) for the gallery."""
    import cv2

    if crop.shape[:2] != (side, side):
        interpolation = cv2.INTER_AREA if max(crop.shape[:2]) > side else cv2.INTER_LINEAR
        crop = cv2.resize(crop, (side, side), interpolation=interpolation)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY])
    if not ok:
        raise ValueError("could not encode a gallery thumbnail")
    return data.tobytes()


def gallery_cells(cells: Sequence[CellResult], per_type: int = GALLERY_PER_TYPE) -> list[int]:
    """Indices of the cells the gallery shows: at most ``per_type`` of each type, flagged cells
    first, then in cell order."""
    if per_type < 0:
        raise ValueError(f"per_type must not be negative, got {per_type}")
    taken: Counter[str] = Counter()
    chosen = []
    flagged_first = sorted(range(len(cells)), key=lambda i: not cells[i].explanation.review)
    for i in flagged_first:
        cell_type = cells[i].explanation.cell_type
        if taken[cell_type] < per_type:
            taken[cell_type] += 1
            chosen.append(i)
    return sorted(chosen)


class GalleryThumbnails:
    """The thumbnails of the cells :func:`gallery_cells` will choose, gathered while the cells
    arrive in order: it keeps at most ``2 * per_type`` of each type however many cells come."""

    def __init__(self, per_type: int = GALLERY_PER_TYPE) -> None:
        if per_type < 0:
            raise ValueError(f"per_type must not be negative, got {per_type}")
        self.per_type = per_type
        self._thumbnails: dict[int, bytes] = {}
        self._seen: Counter[tuple[str, bool]] = Counter()
        self._next = 0

    def __len__(self) -> int:
        """The number of thumbnails held."""
        return len(self._thumbnails)

    def offer(self, index: int, cell: CellResult, crop: np.ndarray) -> None:
        """Consider cell ``index`` (0, 1, 2, ... in turn) with its crop; keep a thumbnail if it may be shown."""
        if index != self._next:
            raise ValueError(f"cells must be offered in order: expected cell {self._next}, got {index}")
        self._next += 1
        key = (cell.explanation.cell_type, cell.explanation.review)
        if self._seen[key] < self.per_type:
            self._thumbnails[index] = thumbnail_jpeg(crop)
        self._seen[key] += 1

    def chosen(self, cells: Sequence[CellResult]) -> dict[int, bytes]:
        """The thumbnails of the cells the gallery shows, by cell index (``cells``: every cell offered)."""
        if len(cells) != self._next:
            raise ValueError(f"{self._next} cells were offered but {len(cells)} were given")
        return {i: self._thumbnails[i] for i in gallery_cells(cells, self.per_type)}


def _jpeg_data_uri(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _bar_chart_svg(diff: Differential, width: int = 520, bar_height: int = 18) -> str:
    """A horizontal bar chart of type percentages as inline SVG."""
    from smearscope.datasets.schema import taxonomy

    groups = taxonomy().groups
    rows = list(diff.counts.items())
    height = bar_height * len(rows) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart">']
    for i, (cell_type, count) in enumerate(rows):
        pct = diff.percent(count)
        r, g, b = GROUP_COLOURS.get(groups.get(cell_type, ""), (150, 150, 150))
        y = 5 + i * bar_height
        bar = max(1.0, (width - 260) * pct / 100.0)
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{html.escape(cell_type)}</text>')
        parts.append(f'<rect x="170" y="{y + 2}" width="{bar:.1f}" height="{bar_height - 5}" fill="rgb({r},{g},{b})"/>')
        parts.append(f'<text x="{175 + bar:.1f}" y="{y + 13}" font-size="12">{pct:.1f}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def _differential_table(diff: Differential) -> str:
    nrbc_count = diff.non_wbc_counts.get(NRBC_TYPE, 0)
    nrbc = ""
    if nrbc_count:
        per_100 = f"{diff.nrbc_per_100_wbc:.1f} per 100 WBCs" if diff.total_wbc else "n/a (no WBCs)"
        nrbc = f"<tr><td>nucleated red cells (not in the WBC total)</td><td>{nrbc_count}</td><td>{per_100}</td></tr>"
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{n}</td><td>{diff.percent(n):.1f}</td></tr>" for t, n in diff.counts.items()
    )
    return (
        '<table class="differential"><tr><th>cell type</th><th>count</th><th>% of WBCs</th></tr>'
        f"{rows}<tr><th>total WBCs</th><th>{diff.total_wbc}</th><th>100.0</th></tr>"
        f"<tr><td>blasts and equivalents</td><td>{diff.blast_count}</td><td>{diff.blast_percent:.1f}</td></tr>"
        f"{nrbc}</table>"
    )


def _legend(result: CaptureResult) -> str:
    """Colour key of the type groups drawn on the overlay."""
    groups = sorted({c.explanation.group for c in result.cells})
    items = "".join(
        f'<span class="key"><span class="swatch" style="background:rgb{GROUP_COLOURS.get(g, (200, 200, 200))}"></span>'
        f"{html.escape(g)}</span>" for g in groups
    )
    return f'<div class="legend">{items} <span class="key">thicker box = flagged for review</span></div>'


def _cell_card(cell: CellResult, index: int, thumbnail: bytes) -> str:
    ex = cell.explanation
    reasons = f"<div>review: {html.escape('; '.join(ex.review_reasons))}</div>" if ex.review else ""
    return (
        f'<div class="cell{" review" if ex.review else ""}" id="cell-{index}">'
        f'<img alt="cell {index}" src="{_jpeg_data_uri(thumbnail)}">'
        f'<div class="type">#{index} {html.escape(ex.cell_type)} ({ex.type_probability:.2f})</div>'
        f'<div class="rationale">{html.escape(ex.rationale)}</div>'
        f"<div>consistency {'n/a' if ex.consistency is None else f'{ex.consistency:.2f}'}</div>{reasons}</div>"
    )


def _heading(label: str, shown: int, total: int) -> str:
    counted = f"{shown}" if shown == total else f"{shown} shown of {total}"
    return f"<h3>{html.escape(label)} ({counted})</h3>"


def _gallery(result: CaptureResult, thumbnails: Mapping[int, bytes]) -> str:
    """Flagged cells, then the other cells by type; a note lists the cells left out per type."""
    cells = result.cells
    outside = sorted(i for i in thumbnails if not 0 <= i < len(cells))
    if outside:
        raise ValueError(f"thumbnails given for cells {outside[:5]} of a capture with {len(cells)} cells")
    shown = sorted(thumbnails, key=lambda i: (not cells[i].explanation.review, cells[i].explanation.cell_type, i))
    flagged = [i for i in shown if cells[i].explanation.review]
    by_type: dict[str, list[int]] = {}
    for i in shown:
        if not cells[i].explanation.review:
            by_type.setdefault(cells[i].explanation.cell_type, []).append(i)
    unflagged_totals = Counter(c.explanation.cell_type for c in cells if not c.explanation.review)
    left_out = Counter(c.explanation.cell_type for c in cells) - Counter(cells[i].explanation.cell_type for i in shown)
    parts = []
    if left_out:
        listed = ", ".join(f"{html.escape(t)} {n}" for t, n in sorted(left_out.items()))
        parts.append(f'<p class="left-out">The gallery shows a sample of each type, flagged cells first; '
                     f"every cell is listed in cells.csv. Not shown: {listed}.</p>")
    if flagged:
        cards = "".join(_cell_card(cells[i], i, thumbnails[i]) for i in flagged)
        total = sum(c.explanation.review for c in cells)
        parts.append(f'{_heading("flagged for review", len(flagged), total)}<div class="gallery">{cards}</div>')
    for cell_type, members in by_type.items():
        cards = "".join(_cell_card(cells[i], i, thumbnails[i]) for i in members)
        parts.append(f'{_heading(cell_type, len(members), unflagged_totals[cell_type])}<div class="gallery">{cards}</div>')
    return "".join(parts)


def render_report(result: CaptureResult, thumbnails: Mapping[int, bytes], overlay_name: str) -> str:
    """The report's HTML; ``thumbnails`` holds a JPEG (:func:`thumbnail_jpeg`) for each cell the
    gallery shows, by cell index (see :func:`gallery_cells`)."""
    diff = result.differential()
    flags = "".join(f"<li>{html.escape(f)}</li>" for f in diff.flags) or "<li>none</li>"
    gallery = _gallery(result, thumbnails)
    name = html.escape(Path(result.capture).name)
    facts = (
        f"<tr><td>capture</td><td>{html.escape(result.capture)}</td></tr>"
        f"<tr><td>size</td><td>{result.width} x {result.height} px</td></tr>"
        f"<tr><td>scale</td><td>{result.um_per_px:.4f} um/px ({result.scale_source}, confidence {result.scale_confidence:.2f})</td></tr>"
        f"<tr><td>focus</td><td>{'n/a' if result.focus is None else f'{result.focus:.1f}'}{' (out of focus)' if result.out_of_focus else ''}</td></tr>"
        f"<tr><td>cells found</td><td>{len(result.cells)}</td></tr>"
        f"<tr><td>analysis time</td><td>{result.seconds:.1f} s</td></tr>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>smearscope: {name}</title>"
        f"<style>{STYLE}</style></head><body><h1>smearscope report: {name}</h1>"
        f'<table class="facts">{facts}</table>'
        f'<h2>Flags</h2><ul class="flags">{flags}</ul>'
        f"<h2>Differential count</h2>{_differential_table(diff)}{_bar_chart_svg(diff)}"
        f'<h2>Capture</h2>{_legend(result)}<img class="overlay" alt="overlay" src="{html.escape(overlay_name)}">'
        f'<h2>Cells</h2>{gallery or "<p>no cells found</p>"}'
        "</body></html>"
    )


def write_report(result: CaptureResult, thumbnails: Mapping[int, bytes], overlay_name: str, path: str | Path) -> Path:
    """Write the HTML report atomically."""
    return write_text_atomic(path, render_report(result, thumbnails, overlay_name))
