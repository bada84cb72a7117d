"""``pfv-onnx debug``: why was this image misclassified? (paper section 5.1, figure 5)

The comparison is :meth:`pfv_onnx.PFV.debug`'s (:mod:`pfv_onnx.analyses.debug`), its page :mod:`pfv_onnx.render.debug`'s; this module
weights by the paper's ``A^b`` unless told otherwise (:data:`~pfv_onnx.analyses.debug.DEFAULT_WEIGHTING`),
writes the page and prints the prediction and the verdict.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analyses.debug import DEFAULT_WEIGHTING
from ..options import Options
from ..pfv import PFV
from ..util.console import say
from ..util.files import check_apart


def run(args: argparse.Namespace, options: Options) -> int:
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    check_apart(out, datasets=[args.image, *args.true_class, *args.predicted_class])
    if getattr(args, "weighting", None) is None:
        options = options.replace(weighting=DEFAULT_WEIGHTING)
    result = PFV(args.model, options).debug(args.image, args.true_class, args.predicted_class, seed=args.seed)
    summary = result.save(out, overwrite=True)  # the command line claimed the folder, refusing a used one without --overwrite
    if not args.quiet:
        top = summary["prediction"][0] if summary["prediction"] else None
        if top:
            say(f"predicted: {top['label'] or top['class']} ({top['probability']:.0%})")
        for line in summary["verdict"]:
            say(line)
        say(f"wrote {out}/index.html")
    return 0
