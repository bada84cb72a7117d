"""The survey's page and inline view: ``grid.png``, ``class_colours.png``, ``similarity.png``, ``confusion.png`` (with the
probe), ``summary.json`` and ``index.html``; what ``pfv-onnx survey`` writes."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from ..analyses.survey import Survey
from ..util.files import write_report
from . import write_png
from .html import Figure, Section, page
from .notebook import panel_html
from .images import labelled_grid, matrix_picture, overlay, to_uint8


def write_survey(out: Path, result: Survey) -> None:
    """The pictures, ``summary.json`` and ``index.html`` in the folder ``out`` (made and checked by the caller)."""
    summary, names = result.summary, result.names
    _write_figures(out, result)
    figures = [Figure("grid.png", "PFV over each sampled photo, a row per class", wide=True),
               Figure("class_colours.png", "principal-feature colour per class"),
               Figure("similarity.png", "class similarity from the colours")]
    paragraphs = [
        f"{len(summary['sample'])} photos ({result.per_class} per class, seed {summary['seed']}) analysed as one batch. "
        "PFV predicts these pairs to be confused: "
        + "; ".join(f"{escape(p['classes'][0])} and {escape(p['classes'][1])} ({p['similarity']:.2f})" for p in summary["predicted_confusions"]) + "."
    ]
    if "probe" in summary:
        p = summary["probe"]
        counts = np.array(p["confusion"])
        write_png(out / "confusion.png", matrix_picture(counts.astype(np.float64), names, [[str(v) for v in row] for row in counts]))
        figures.append(Figure("confusion.png", "probe's confusion on the held-out images (rows: true, columns: predicted)"))
        paragraphs.append(
            f"Linear probe on the pooled final layer: {p['accuracy']:.1%} held-out accuracy ({p['test_images']} images, chance "
            f"{p['chance']:.0%}). Rank correlation of PFV's class similarity with the probe's confusion: "
            f"{p['similarity_vs_confusion']:.2f}."
        )
    intro = [f"Dataset <code>{escape(summary['dataset'])}</code>: {len(names)} classes."]
    write_report(out, summary, page("pfv-onnx survey", intro, [Section("Survey", paragraphs, figures=figures)]))


def _write_figures(out: Path, result: Survey) -> None:
    """The grid, the class colours and the similarity matrix."""
    names = result.names
    write_png(out / "grid.png", _grid(result))
    swatches = [[np.full((64, 64, 3), to_uint8(c), np.uint8)] for c in result.colours]
    write_png(out / "class_colours.png", labelled_grid(swatches, names, None))
    write_png(out / "similarity.png", matrix_picture(result.similarity, names, lo=0.0, hi=1.0))


def _grid(result: Survey) -> np.ndarray:
    """PFV over each sampled photo, a row per class."""
    labels, names = result.labels, result.names
    tiles = [overlay(to_uint8(x), image) for x, image in zip(result.batch.rgb, result.batch.images)]
    columns = max(np.bincount(labels))
    blank = np.full_like(tiles[0], 255)
    rows = [[tiles[i] for i in np.flatnonzero(labels == k)] + [blank] * (columns - int((labels == k).sum())) for k in range(len(names))]
    return labelled_grid(rows, names, None)


def survey_html(result: Survey) -> str:
    """The inline view: the predicted confusions over the grid."""
    return panel_html(Survey.__repr__(result), _grid(result))
