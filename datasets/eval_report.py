"""An :class:`~smearscope.datasets.evaluation.EvalReport` as Markdown, HTML and PNG plots.

The HTML page embeds its plots, so it can be mailed or archived alone; the PNGs and a JSON
copy of the numbers are written beside it. Every file is written atomically. Plots are
drawn with matplotlib's Agg canvas directly (no global backend switch).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from smearscope.datasets.evaluation import NONE, EvalReport
from smearscope.datasets.io import write_bytes_atomic, write_json_atomic, write_text_atomic

PLOTS = {
    "pr_curves": "Precision-recall per group (class-agnostic, IoU 0.5)",
    "type_confusion": "Cell types of matched, missed and spurious cells (all images)",
    "attribute_accuracy": "Attribute accuracy of matched cells per group",
}


def _number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def plot_pr_curves(report: EvalReport) -> bytes:
    """One precision-recall curve per group, as PNG bytes."""
    figure = _figure(6.5, 4.5)
    axes = figure.add_subplot(1, 1, 1)
    recall = [i / 100 for i in range(101)]
    for group in report.groups:
        if group.pr_precision50 is not None:
            axes.plot(recall, group.pr_precision50, label=f"{group.name} (AP50 {_number(group.agnostic_map50)})")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="lower left")
    axes.set_title(PLOTS["pr_curves"], fontsize=9)
    return _png(figure)


def plot_confusion(report: EvalReport) -> bytes:
    """The type confusion matrix (rows ground truth, columns predicted), as PNG bytes."""
    labels = report.confusion_labels
    size = max(4.0, 0.45 * len(labels) + 2.5)
    figure = _figure(size, size)
    axes = figure.add_subplot(1, 1, 1)
    axes.imshow(report.confusion, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xlabel(f"predicted ({NONE} = missed)")
    axes.set_ylabel(f"ground truth ({NONE} = spurious)")
    top = max((v for row in report.confusion for v in row), default=0)
    for r, row in enumerate(report.confusion):
        for c, value in enumerate(row):
            if value:
                colour = "white" if value > top / 2 else "black"
                axes.text(c, r, str(value), ha="center", va="center", fontsize=7, color=colour)
    axes.set_title(PLOTS["type_confusion"], fontsize=9)
    return _png(figure)


def plot_attribute_accuracy(report: EvalReport) -> bytes:
    """Grouped bars: accuracy of each attribute per group, as PNG bytes."""
    groups = [g for g in report.groups if g.attributes]
    names = sorted({a.name for g in groups for a in g.attributes})
    figure = _figure(max(6.0, 0.6 * len(names) * max(1, len(groups)) / 2 + 3), 4.5)
    axes = figure.add_subplot(1, 1, 1)
    if not names:
        axes.text(0.5, 0.5, "no attributes on matched cells", ha="center", va="center")
        axes.set_axis_off()
        return _png(figure)
    width = 0.8 / len(groups)
    for i, group in enumerate(groups):
        scores = {a.name: a.accuracy for a in group.attributes}
        xs = [n + i * width for n in range(len(names))]
        axes.bar(xs, [scores.get(n, 0.0) for n in names], width=width, label=group.name)
    axes.set_xticks([n + 0.4 - width / 2 for n in range(len(names))], names, rotation=45, ha="right", fontsize=7)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("accuracy")
    axes.legend(fontsize=7)
    axes.set_title(PLOTS["attribute_accuracy"], fontsize=9)
    return _png(figure)


def _map_rows(report: EvalReport) -> list[list[str]]:
    rows = []
    for g in report.groups:
        rows.append([
            g.name, str(g.images), str(g.gt_cells), str(g.pred_cells),
            _number(g.map50), _number(g.map50_95), _number(g.coco_map50), _number(g.coco_map50_95),
            _number(g.agnostic_map50), _number(g.agnostic_map50_95),
            str(g.matched), str(g.missed), str(g.spurious), _number(g.type_accuracy),
        ])
    return rows


MAP_HEADER = [
    "group", "images", "GT cells", "predicted", "mAP50", "mAP50-95", "mAP50 (pycocotools)",
    "mAP50-95 (pycocotools)", "cell mAP50", "cell mAP50-95", "matched", "missed", "spurious", "type accuracy",
]
ATTRIBUTE_HEADER = ["group", "attribute", "cells", "accuracy", "macro-F1"]


def _attribute_rows(report: EvalReport) -> list[list[str]]:
    return [
        [g.name, a.name, str(a.cells), _number(a.accuracy), _number(a.macro_f1)]
        for g in report.groups for a in g.attributes
    ]


def _agreement_text(report: EvalReport) -> str:
    verdict = "agree" if report.coco_agrees else "DISAGREE"
    return (
        f"FiftyOne and pycocotools {verdict}: largest difference {report.max_coco_difference:.2e} "
        f"(tolerance {report.tolerance:.0e})."
    )


def to_markdown(report: EvalReport) -> str:
    """The report as Markdown (tables of numbers, plots linked as PNG files)."""
    def table(header: list[str], rows: list[list[str]]) -> list[str]:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return lines + ["| " + " | ".join(row) + " |" for row in rows]

    lines = [
        f"# Evaluation of `{report.pred_field}` against `{report.gt_field}` ({report.dataset})",
        "",
        f"Evaluation key `{report.eval_key}`; cells match at IoU >= {report.iou:g}. mAP columns are by type; "
        "'cell mAP' reads every label as one class.",
        "",
        _agreement_text(report),
        "",
        "## Detection per group",
        *table(MAP_HEADER, _map_rows(report)),
        "",
        "## Attributes of matched cells",
        *(table(ATTRIBUTE_HEADER, _attribute_rows(report)) if _attribute_rows(report) else ["No attributes to compare."]),
        "",
        "## Plots",
        *[f"![{title}]({name}.png)" for name, title in PLOTS.items()],
        "",
        "## What the numbers mean",
        *[f"- {note}" for note in report.notes],
        "",
    ]
    return "\n".join(lines)


def to_html(report: EvalReport, images: dict[str, bytes]) -> str:
    """The report as one self-contained HTML page with the plots embedded."""
    def table(header: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    figures = "".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{base64.b64encode(images[name]).decode()}">'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
        for name, title in PLOTS.items()
    )
    attribute_rows = _attribute_rows(report)
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    agreement_class = "ok" if report.coco_agrees else "bad"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>smearscope evaluation: {html.escape(report.dataset)} / {html.escape(report.eval_key)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #eef; }}
figure {{ display: inline-block; margin: 1em; vertical-align: top; }}
img {{ max-width: 640px; }}
.ok {{ color: #060; }} .bad {{ color: #a00; font-weight: bold; }}
</style></head><body>
<h1>Evaluation of <code>{html.escape(report.pred_field)}</code> against <code>{html.escape(report.gt_field)}</code></h1>
<p>Dataset <b>{html.escape(report.dataset)}</b>, evaluation key <code>{html.escape(report.eval_key)}</code>;
cells match at IoU &ge; {report.iou:g}. mAP columns are by type; "cell mAP" reads every label as one class.</p>
<p class="{agreement_class}">{html.escape(_agreement_text(report))}</p>
<h2>Detection per group</h2>
{table(MAP_HEADER, _map_rows(report))}
<h2>Attributes of matched cells</h2>
{table(ATTRIBUTE_HEADER, attribute_rows) if attribute_rows else "<p>No attributes to compare.</p>"}
<h2>Plots</h2>
{figures}
<h2>What the numbers mean</h2>
<ul>{notes}</ul>
</body></html>
"""


def write_report(report: EvalReport, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.md``, ``report.html``, ``report.json`` and the plot PNGs into ``out_dir``;
    return the paths by kind."""
    out_dir = Path(out_dir)
    images = {
        "pr_curves": plot_pr_curves(report),
        "type_confusion": plot_confusion(report),
        "attribute_accuracy": plot_attribute_accuracy(report),
    }
    paths = {name: write_bytes_atomic(out_dir / f"{name}.png", data) for name, data in images.items()}
    paths["json"] = write_json_atomic(out_dir / "report.json", report.to_dict())
    paths["markdown"] = write_text_atomic(out_dir / "report.md", to_markdown(report))
    paths["html"] = write_text_atomic(out_dir / "report.html", to_html(report, images))
    return paths
