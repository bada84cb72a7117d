"""An evaluation's page and views: what ``pfv-onnx evaluate`` and ``EvaluationResult.save`` write
(``summary.json``, ``localisation.png``, the curves, ``examples.png`` and ``index.html``), and its compact
text and inline HTML in a notebook.

The inline view holds the scores table and, as one JPEG, the first :data:`SHOWN` images with their maps in
tiles of :data:`THUMBNAIL` pixels; it stays under :data:`MAX_HTML` bytes (the figure is left out where it
would not fit).
"""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path
from textwrap import shorten
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..analyses.evaluate import LOCALISATION, Evaluation
from ..analyses.evaluation_batches import CONTROLS, GAUSSIAN, RANDOM, component_name, picture_name
from ..util.console import plural
from ..util.files import write_report
from . import Figure, Section, colour_map, labelled_grid, line_chart, overlay, page, table_picture, to_uint8, write_png

HEADINGS = {
    "pointing": "pointing",
    "border": "max on border",
    "auc": "ROC-AUC",
    "mass": "mass / area",
    "deletion": "deletion",
    "insertion": "insertion",
    "faithfulness": "ins. - del.",
}
MEANINGS = {
    "pointing": "share of images whose map peaks inside the object (higher is better)",
    "border": "share of images whose map peaks on the outer 1/16 of the image (lower is better)",
    "auc": "ROC-AUC of the map's values for the object's pixels (1 perfect, 0.5 chance)",
    "mass": "share of the map's mass inside the object over the object's share of the image (1 chance)",
    "deletion": "area under the top class's probability as the map's pixels are removed first (lower is better)",
    "insertion": "area under it as they are restored first into the filled image (higher is better)",
    "faithfulness": "insertion minus deletion (higher is better)",
}
EXAMPLE_COLUMNS = 6
BEST = 3  # maps named in the text summary
SHOWN, THUMBNAIL = 4, 80  # the inline view's examples: images, and each tile's side in pixels
MAX_HTML = 300_000  # bytes of the inline view, at most (a test checks it on the shipped set)
CELL = "border:1px solid #ddd;padding:.15em .5em;text-align:left"


def scores_table(summary: dict[str, Any]) -> tuple[list[str], list[str], np.ndarray, list[list[str]]]:
    """The maps' names, the score columns measured, the scores ``(maps, columns)`` float64 and their text."""
    names = list(summary["maps"])
    columns = [m for m in (*LOCALISATION, "deletion", "insertion", "faithfulness") if m in summary["maps"][names[0]]]
    values = np.array([[summary["maps"][n][m] for m in columns] for n in names], np.float64)
    text = [[f"{v:.0%}" if m in ("pointing", "border") else f"{v:.3f}" for v, m in zip(row, columns)] for row in values]
    return names, columns, values, text


def write_evaluation(out: Path, evaluation: Evaluation) -> None:
    """``summary.json``, ``localisation.png``, the curves, ``examples.png`` and ``index.html`` in the folder
    ``out`` (made and checked by the caller)."""
    summary = evaluation.summary
    names, columns, values, text = scores_table(summary)
    figures = [Figure("localisation.png", "every map's scores (each column coloured over its own range)", wide=True)]
    write_png(out / "localisation.png", table_picture(values, names, [HEADINGS[m] for m in columns], text))
    if summary["steps"]:
        # The curves of the maps most compared, not of every component: a chart of 14 lines is unreadable.
        hidden = {component_name(k) for k in range(1, 4)} | {picture_name("final"), GAUSSIAN}
        shown = [n for n in names if n not in hidden]
        for curve in ("deletion", "insertion"):
            series = {n: summary["maps"][n]["curves"][curve] for n in shown}
            top = max(max(v) for v in series.values())
            chart = line_chart(summary["fractions"], series, f"share of pixels {'removed' if curve == 'deletion' else 'restored'}", (0.0, max(top, 1e-3) * 1.05), size=(440, 760))
            write_png(out / f"{curve}.png", chart)
            figures.append(Figure(f"{curve}.png", f"{curve} curves: the top class's mean probability"))
    if evaluation.examples:
        write_png(out / "examples.png", examples_figure(evaluation.examples, names))
        figures.append(Figure("examples.png", "the first images, their PFV pictures and every map (each scaled to its own range)", wide=True))
    table = [["map", *[HEADINGS[m] for m in columns]]] + [[escape(n), *row] for n, row in zip(names, text)]
    controls = summary["controls"]
    verdict = "trustworthy" if controls["trustworthy"] else "NOT trustworthy: " + "; ".join(controls["problems"])
    intro = [
        f"{plural(summary['images'], 'image')}, model <code>{escape(str(summary['model']['path']))}</code>, PFV pictures in batches of "
        f"{summary['batch']}, components shown with the <b>{escape(summary['weighting'])}</b> weighting.",
        f"Controls: the random map's ROC-AUC is {controls['random_auc']:.3f}; the run is {escape(verdict)}.",
    ]
    meanings = "".join(f"<li><b>{HEADINGS[m]}</b>: {MEANINGS[m]}</li>" for m in columns)
    sections = [Section("Scores", [f"<ul>{meanings}</ul>"], table=table, figures=figures)]
    if summary["components"]:
        rows = [["component", "importance (ins. - del.)"]] + [[str(c["component"]), f"{c['importance']:.3f}"] for c in summary["components"]]
        rows.append([RANDOM, f"{summary['maps'][RANDOM]['faithfulness']:.3f}"])
        sections.append(Section("Components", ["How much of the top class's probability each component's region carries: its deletion and insertion curves, as for a map."], table=rows))
    write_report(out, summary, page("pfv-onnx evaluate", intro, sections))


def examples_figure(examples: dict[str, np.ndarray], names: list[str], columns: int = EXAMPLE_COLUMNS, tile: int | None = None) -> np.ndarray:
    """The first ``columns`` images with the object outlined, their PFV pictures, and every map over them;
    each tile ``tile`` pixels square (default: the images' size). An ``(H, W, 3)`` uint8 figure."""
    images, masks = examples["image"][:columns], examples["mask"][:columns]
    outlined = []
    for image, mask in zip(images, masks):
        picture = image.copy()
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(picture, contours, -1, (255, 0, 255), 2)
        outlined.append(picture)
    rows = [outlined, [to_uint8(x) for x in examples["picture"][:columns]]]
    for name in names:
        rows.append([overlay(colour_map(m), image) for m, image in zip(examples[name][:columns], images)])
    if tile is not None:
        rows = [[cv2.resize(x, (tile, tile), interpolation=cv2.INTER_AREA) for x in row] for row in rows]
    return labelled_grid(rows, ["image, object outlined", "PFV", *names])


def evaluation_text(evaluation: Evaluation) -> str:
    """A few lines: the images and model, the verdict, the maps that find the objects best, where the rest is."""
    summary = evaluation.summary
    lines = [_headline(summary), *(f"  {problem}" for problem in _problems(summary))]
    best = sorted((n for n in summary["maps"] if n not in CONTROLS), key=lambda n: -summary["maps"][n]["auc"])[:BEST]
    for name in best:
        scores = summary["maps"][name]
        faithful = f", ins. - del. {scores['faithfulness']:+.3f}" if "faithfulness" in scores else ""
        lines.append(f"  {shorten(name, 40, placeholder='...')}: ROC-AUC {scores['auc']:.3f}, pointing {scores['pointing']:.0%}{faithful}")
    lines.append("  .save(folder) writes what pfv-onnx evaluate writes; .summary holds the numbers, .examples the first images' maps")
    return "\n".join(lines)


def _headline(summary: dict[str, Any]) -> str:
    controls = summary["controls"]
    model = shorten(Path(str(summary["model"]["path"])).name, 60, placeholder="...")
    verdict = "trustworthy" if controls["trustworthy"] else "NOT trustworthy"
    return (f"Evaluation of {plural(summary['images'], 'image')} with {model}, weighting {summary['weighting']}: {verdict} "
            f"(random control's ROC-AUC {controls['random_auc']:.3f})")


def _problems(summary: dict[str, Any]) -> list[str]:
    """The first few problems the controls found, each cut to one short line (``summary.json`` has them whole)."""
    return [shorten(problem, 150, placeholder="...") for problem in summary["controls"]["problems"][:3]]


def evaluation_html(evaluation: Evaluation) -> str:
    """HTML: the verdict, the scores table and, when it fits under :data:`MAX_HTML`, the first images with
    their maps as one JPEG."""
    summary = evaluation.summary
    names, columns, _, text = scores_table(summary)
    header = "".join(f"<th style='{CELL}'>{escape(h)}</th>" for h in ("map", *[HEADINGS[m] for m in columns]))
    rows = "".join(f"<tr><td style='{CELL}'>{escape(n)}</td>" + "".join(f"<td style='{CELL}'>{t}</td>" for t in row) + "</tr>" for n, row in zip(names, text))
    parts = [f"<p>{escape(_headline(summary))}</p>", *(f"<p style='color:#a00'>{escape(p)}</p>" for p in _problems(summary)),
             f"<table style='border-collapse:collapse;font-size:12px'><tr>{header}</tr>{rows}</table>"]
    if evaluation.examples:
        buffer = io.BytesIO()
        Image.fromarray(examples_figure(evaluation.examples, names, SHOWN, THUMBNAIL)).save(buffer, format="JPEG", quality=80)
        uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        title = "the first images, their PFV pictures and every map (each scaled to its own range)"
        figure = f"<img src='{uri}' title='{title}' alt='{title}' style='display:block;margin-top:.5em'>"
        if sum(map(len, parts)) + len(figure) + 100 <= MAX_HTML:
            parts.append(figure)
        else:
            parts.append("<p>(the examples' figure is too large to show here: <code>.save(folder)</code> writes it)</p>")
    return f"<div>{''.join(parts)}</div>"
