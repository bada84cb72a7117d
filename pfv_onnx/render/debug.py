"""The debug page and inline view: ``where_true.png`` and ``where_predicted.png`` (where the failed image differs from each
class, painted in each component's colour), ``panel.png``, ``summary.json`` and ``index.html``; what
``pfv-onnx debug`` writes."""

from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np

from ..analyses.debug import Debug
from ..core.metrics import FOREGROUND_SHARE
from ..images.labels import class_label
from ..util.files import write_report
from . import write_png
from .html import Figure, Section, page
from .notebook import panel_html
from .images import BAR_COLOURS, bars, labelled_grid, mark, overlay, to_uint8
from .report import safe_name


def write_debug(out: Path, result: Debug) -> None:
    """The pictures, ``summary.json`` and ``index.html`` in the folder ``out`` (made and checked by the caller)."""
    summary = result.summary
    figures = []
    for key, entry in summary["classes"].items():
        marks = [(mask, BAR_COLOURS[k]) for mask, k in result.where[key]]
        write_png(out / entry["picture"], mark(result.batch.images[0], marks))
        figures.append(Figure(entry["picture"], f"where the differences from the {key} class are (painted in each component's colour)"))
    write_png(out / "panel.png", _panel(result))
    top = summary["prediction"][0] if summary["prediction"] else None
    prediction = f"Predicted: {escape(class_label(top['class'], top['label']))} ({top['probability']:.0%})." if top else ""
    true, predicted = (len(summary["classes"][key]["examples"]) for key in ("true", "predicted"))
    sections = [
        Section("Verdict", [prediction, *map(escape, summary["verdict"])], figures=figures),
        Section(
            "The batch",
            [f"The failed image, {true} examples of the true class and {predicted} of the predicted "
             f"class, analysed together. Bars: the share of each component over each image's foreground (the "
             f"{FOREGROUND_SHARE:.0%} of its pixels with the highest activation)."],
            figures=[Figure("panel.png", "rows: input, PFV, PFV over the input; bars: foreground distribution", wide=True)],
        ),
    ]
    write_report(out, summary, page(f"pfv-onnx debug: {safe_name(Path(summary['image']).name)}", [], sections))


def _panel(result: Debug) -> np.ndarray:
    """Inputs, PFV and PFV over the inputs, with bars of each image's foreground distribution below."""
    batch = result.batch
    width = batch.images.shape[2]
    rows = [list(batch.images), [to_uint8(x) for x in batch.rgb], [overlay(to_uint8(x), i) for x, i in zip(batch.rgb, batch.images)]]
    grid = labelled_grid(rows, ["input", "PFV", "PFV over the input"], result.names)
    chart = labelled_grid([[bars(d, width) for d in result.distributions]], ["foreground R, G, B"], None)
    return np.vstack([grid, np.full((4, grid.shape[1], 3), 255, np.uint8), chart])


def debug_html(result: Debug) -> str:
    """The inline view: the verdict over the panel."""
    return panel_html(Debug.__repr__(result), _panel(result))
