"""The per-capture HTML report: overlay, differential table and chart, cell gallery."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from smearscope.datasets.io import write_text_atomic
from smearscope.tools.differential import Differential
from smearscope.tools.results import GROUP_COLOURS, CaptureResult, CellResult

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


def _png_data_uri(image: np.ndarray) -> str:
    import cv2

    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode a gallery crop")
    return "data:image/png;base64," + base64.b64encode(data.tobytes()).decode("ascii")


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
    rows = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{n}</td><td>{diff.percent(n):.1f}</td></tr>" for t, n in diff.counts.items()
    )
    return (
        '<table class="differential"><tr><th>cell type</th><th>count</th><th>% of WBCs</th></tr>'
        f"{rows}<tr><th>total WBCs</th><th>{diff.total_wbc}</th><th>100.0</th></tr>"
        f"<tr><td>blasts and equivalents</td><td>{diff.blast_count}</td><td>{diff.blast_percent:.1f}</td></tr></table>"
    )


def _legend(result: CaptureResult) -> str:
    """Colour key of the type groups drawn on the overlay."""
    groups = sorted({c.group for c in result.cells})
    items = "".join(
        f'<span class="key"><span class="swatch" style="background:rgb{GROUP_COLOURS.get(g, (200, 200, 200))}"></span>'
        f"{html.escape(g)}</span>" for g in groups
    )
    return f'<div class="legend">{items} <span class="key">thicker box = flagged for review</span></div>'


def _cell_card(cell: CellResult, index: int, crop: np.ndarray) -> str:
    reasons = f"<div>review: {html.escape('; '.join(cell.review_reasons))}</div>" if cell.review else ""
    return (
        f'<div class="cell{" review" if cell.review else ""}" id="cell-{index}">'
        f'<img alt="cell {index}" src="{_png_data_uri(crop)}">'
        f'<div class="type">#{index} {html.escape(cell.cell_type)} ({cell.type_probability:.2f})</div>'
        f'<div class="rationale">{html.escape(cell.rationale)}</div>'
        f"<div>consistency {'n/a' if cell.consistency is None else f'{cell.consistency:.2f}'}</div>{reasons}</div>"
    )


def render_report(result: CaptureResult, crops: list[np.ndarray], overlay_name: str) -> str:
    """The report's HTML; ``crops`` holds one gallery image per cell, in cell order."""
    diff = result.differential()
    flags = "".join(f"<li>{html.escape(f)}</li>" for f in diff.flags) or "<li>none</li>"
    order = sorted(range(len(result.cells)), key=lambda i: (not result.cells[i].review, result.cells[i].cell_type, i))
    by_type: dict[str, list[int]] = {}
    flagged = [i for i in order if result.cells[i].review]
    for i in order:
        if not result.cells[i].review:
            by_type.setdefault(result.cells[i].cell_type, []).append(i)
    gallery = []
    if flagged:
        cards = "".join(_cell_card(result.cells[i], i, crops[i]) for i in flagged)
        gallery.append(f'<h3>flagged for review ({len(flagged)})</h3><div class="gallery">{cards}</div>')
    for cell_type, members in by_type.items():
        cards = "".join(_cell_card(result.cells[i], i, crops[i]) for i in members)
        gallery.append(f'<h3>{html.escape(cell_type)} ({len(members)})</h3><div class="gallery">{cards}</div>')
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
        f'<h2>Cells</h2>{"".join(gallery) or "<p>no cells found</p>"}'
        "</body></html>"
    )


def write_report(result: CaptureResult, crops: list[np.ndarray], overlay_name: str, path: str | Path) -> Path:
    """Write the HTML report atomically."""
    return write_text_atomic(path, render_report(result, crops, overlay_name))
