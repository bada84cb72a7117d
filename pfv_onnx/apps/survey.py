"""``pfv-onnx survey``: do a model's features separate the classes of a new dataset? (paper 5.2, figs 6-8)

The survey is :meth:`pfv_onnx.PFV.survey`'s (:mod:`pfv_onnx.analyses.survey`), its page :mod:`pfv_onnx.render.survey`'s; this module
writes the page and prints the pairs PFV predicts to be confused (and the probe's score).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..options import Options
from ..pfv import PFV
from ..util.console import say
from ..util.files import check_apart


def run(args: argparse.Namespace, options: Options) -> int:
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    check_apart(out, datasets=[args.dataset])
    result = PFV(args.model, options).survey(args.dataset, per_class=args.per_class, seed=args.seed, probe=args.probe)
    summary = result.save(out, overwrite=True)  # the command line claimed the folder, refusing a used one without --overwrite
    if not args.quiet:
        pairs = "; ".join(f"{a} and {b}" for a, b in (p["classes"] for p in summary["predicted_confusions"]))
        say(f"PFV predicts these classes to be confused: {pairs}")
        if "probe" in summary:
            p = summary["probe"]
            say(f"linear probe: {p['accuracy']:.1%} held-out accuracy (chance {p['chance']:.0%}); "
                  f"similarity vs confusion rank correlation {p['similarity_vs_confusion']:.2f}")
        say(f"wrote {out}/index.html")
    return 0
