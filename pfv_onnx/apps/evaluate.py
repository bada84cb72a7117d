"""``pfv-onnx evaluate``: do PFV's maps point at the object, and are they faithful to the model?

The measurements are :mod:`pfv_onnx.analyses.evaluate`'s; this module makes the images (composites of cut-outs on
photos, the shipped set by default, or a folder of images with their masks), shows a progress bar and
writes ``summary.json``, the tables and curves as pictures, a few examples and ``index.html``. The exit
code is 1 when the controls say the run is not trustworthy.
"""

from __future__ import annotations

import argparse
from html import escape
from pathlib import Path

import cv2
import numpy as np

from ..images.composites import composites, pairs
from ..util.console import plural, say, warn
from ..errors import PFVError
from ..analyses.evaluate import BATCH, COMPOSITES, GAUSSIAN, LOCALISATION, RANDOM, STEPS, Evaluation, component_name, evaluate, picture_name
from ..util.files import check_apart, output_folder, write_report
from ..options import Options
from ..images.preprocess import expand_inputs
from ..util.progress import Progress
from ..render import Figure, Section, colour_map, labelled_grid, line_chart, overlay, page, table_picture, to_uint8, write_png

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


def scenes_for(args: argparse.Namespace):
    """The images the command was given, as a function of the model's input size (see :func:`evaluate`)."""
    if args.images or args.masks:
        if not (args.images and args.masks):
            raise PFVError("--images and --masks go together")
        if args.objects or args.backgrounds:
            raise PFVError("give either --images with --masks, or --objects with --backgrounds")
        return lambda size: pairs(Path(args.images), Path(args.masks), size)
    if bool(args.objects) != bool(args.backgrounds):
        raise PFVError("--objects and --backgrounds go together")
    if not args.objects:
        return None
    objects, backgrounds = expand_inputs([args.objects]), expand_inputs([args.backgrounds])
    return lambda size: composites(objects, backgrounds, size, args.count or COMPOSITES, args.seed)


def write(out: Path, evaluation: Evaluation) -> None:
    """``summary.json``, ``localisation.png``, the curves, ``examples.png`` and ``index.html`` in ``out``."""
    summary = evaluation.summary
    names = list(summary["maps"])
    columns = [m for m in (*LOCALISATION, "deletion", "insertion", "faithfulness") if m in summary["maps"][names[0]]]
    values = np.array([[summary["maps"][n][m] for m in columns] for n in names], np.float64)
    text = [[f"{v:.0%}" if m in ("pointing", "border") else f"{v:.3f}" for v, m in zip(row, columns)] for row in values]
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


def examples_figure(examples: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """The first images with the object outlined, their PFV pictures, and every map over them."""
    images, masks = examples["image"][:EXAMPLE_COLUMNS], examples["mask"][:EXAMPLE_COLUMNS]
    outlined = []
    for image, mask in zip(images, masks):
        picture = image.copy()
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(picture, contours, -1, (255, 0, 255), 2)
        outlined.append(picture)
    rows = [outlined, [to_uint8(x) for x in examples["picture"][:EXAMPLE_COLUMNS]]]
    for name in names:
        rows.append([overlay(colour_map(m), image) for m, image in zip(examples[name][:EXAMPLE_COLUMNS], images)])
    return labelled_grid(rows, ["image, object outlined", "PFV", *names])


def run(args: argparse.Namespace, options: Options) -> int:
    """Exit 0 when the controls behave, 1 when they say the run is not trustworthy."""
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    check_apart(out, datasets=[path for path in (args.images, args.masks, args.objects, args.backgrounds) if path])
    bar: list[Progress] = []

    def progress(done: int, total: int) -> None:
        if not bar:
            bar.append(Progress(total, enabled=not args.quiet))
        bar[0].update()

    try:
        evaluation = evaluate(
            args.model, scenes_for(args), options, batch=args.batch or BATCH, steps=args.steps or STEPS, fill=args.fill,
            faithfulness=not args.no_faithfulness, seed=args.seed, count=args.count or COMPOSITES, progress=progress,
        )
    finally:
        if bar:
            bar[0].close()
    write(output_folder(out, overwrite=True), evaluation)
    summary = evaluation.summary
    if not args.quiet:
        for name, scores in summary["maps"].items():
            line = f"  {name:20s} AUC {scores['auc']:.3f}  pointing {scores['pointing']:4.0%}  border {scores['border']:4.0%}"
            if "faithfulness" in scores:
                line += f"  ins. - del. {scores['faithfulness']:+.3f}"
            say(line)
        say(f"wrote {out}/index.html ({plural(summary['images'], 'image')}, {summary['seconds']:.0f} s)")
    if not evaluation.trustworthy:
        for problem in summary["controls"]["problems"]:
            warn(f"not trustworthy: {problem}")
        return 1
    return 0
