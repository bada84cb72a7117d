"""The randomisation test's page and inline view: ``curve.png`` (similarity with the trained model's PFV per step),
``steps.png`` (PFV at every step), ``summary.json`` and ``index.html``; what ``pfv-onnx sanity`` writes."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from ..analyses.sanity import TREND, UNRELATED, Sanity
from ..util.files import write_report
from . import write_png
from .html import Figure, Section, page
from .notebook import panel_html
from .images import labelled_grid, line_chart, to_uint8


def write_sanity(out: Path, result: Sanity) -> None:
    """The pictures, ``summary.json`` and ``index.html`` in the folder ``out`` (made and checked by the caller)."""
    summary = result.summary
    rows = summary["cascade"]
    counts = [r["randomised"] for r in rows]
    write_png(out / "curve.png", line_chart(counts, {"Spearman": [r["spearman"] for r in rows], "SSIM": [r["ssim"] for r in rows]}, "top layers randomised"))
    write_png(out / "steps.png", _steps(result))
    write_report(out, summary, page("pfv-onnx sanity", [], [_section(summary, result.trend)]))


def _section(summary: dict[str, Any], trend: float) -> Section:
    rows, independent, passed = summary["cascade"], summary["all_at_once"], summary["passed"]
    table = [["top layers randomised", "from layer", "Spearman", "SSIM"]] + [
        [str(r["randomised"]), f"<code>{escape(r['from_layer'])}</code>", f"{r['spearman']:.3f}", f"{r['ssim']:.3f}"] for r in rows
    ] + [[f"all {summary['layers']}, at once", "(another seed)", f"{independent['spearman']:.3f}", f"{independent['ssim']:.3f}"]]
    return Section(
        f"Randomisation test: {'PASSED' if passed else 'FAILED'}",
        [f"PFV {'changes' if passed else 'does not change enough'} as the network's weights are randomised "
         f"(criteria: fully randomised below {UNRELATED}, all at once and at the end of the cascade; the cascade's rank "
         f"correlation with the number of randomised layers {TREND} or lower: here {trend:.2f})."],
        table=table,
        figures=[Figure("curve.png", "similarity with the trained model's PFV"), Figure("steps.png", "PFV at every step", wide=True)],
    )


def _steps(result: Sanity) -> np.ndarray:
    """PFV of every image (columns) for the trained model and at every step (rows)."""
    counts = [r["randomised"] for r in result.summary["cascade"]]
    pictures = [[to_uint8(x) for x in rgb] for rgb in result.pictures]
    return labelled_grid(pictures, ["trained"] + [f"top {c} random" for c in counts], result.names)


def sanity_html(result: Sanity) -> str:
    """The inline view: the scores over PFV at every step."""
    return panel_html(Sanity.__repr__(result), _steps(result))
