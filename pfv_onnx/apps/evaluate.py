"""``pfv-onnx evaluate``: do PFV's maps point at the object, and are they faithful to the model?

The measurements are :mod:`pfv_onnx.analyses.evaluate`'s and the page :mod:`pfv_onnx.render.evaluation`'s
(``summary.json``, the tables and curves as pictures, a few examples and ``index.html``); this module makes
the images (composites of cut-outs on photos, the shipped set by default, or a folder of images with their
masks), shows a progress bar, saves the result and prints a line per map. The exit code is 1 when the
controls say the run is not trustworthy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analyses.evaluate import BATCH, COMPOSITES, STEPS
from ..errors import PFVError
from ..images.composites import composites, pairs
from ..images.preprocess import expand_inputs
from ..options import Options
from ..pfv import evaluate
from ..util.console import plural, say, warn
from ..util.files import check_apart
from ..util.progress import from_totals, progress_bar


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


def run(args: argparse.Namespace, options: Options) -> int:
    """Exit 0 when the controls behave, 1 when they say the run is not trustworthy."""
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    check_apart(out, datasets=[path for path in (args.images, args.masks, args.objects, args.backgrounds) if path])
    with progress_bar(enabled=not args.quiet) as bar:
        evaluation = evaluate(
            args.model, scenes_for(args), options, batch=args.batch or BATCH, steps=args.steps or STEPS, fill=args.fill,
            faithfulness=not args.no_faithfulness, seed=args.seed, count=args.count or COMPOSITES, progress=from_totals(bar), dask=args.dask,
        )
    evaluation.save(out, overwrite=True)  # the command line claimed the folder, refusing a used one without --overwrite
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
