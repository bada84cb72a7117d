"""``pfv-onnx sanity``: the model-parameter randomisation test (Adebayo et al., NeurIPS 2018; paper fig. 3).

The test is :meth:`pfv_onnx.PFV.sanity`'s (:mod:`pfv_onnx.analyses.sanity`), its page :mod:`pfv_onnx.render.sanity`'s; this module
writes the page, prints a line per step and exits 1 when the test fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..options import Options, given_flags
from ..pfv import PFV
from ..util.console import say
from ..util.files import check_apart


def run(args: argparse.Namespace, options: Options) -> int:
    """Exit 0 when the test passes, 1 when it fails."""
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    check_apart(out, [args.basis] if args.basis else [], datasets=args.inputs)
    result = PFV(args.model, basis=args.basis, **given_flags(args)).sanity(args.inputs, steps=args.steps, seed=args.seed)
    summary = result.save(out, overwrite=True)  # the command line claimed the folder, refusing a used one without --overwrite
    if not args.quiet:
        for row in summary["cascade"]:
            say(f"  top {row['randomised']:>3} {'layer ' if row['randomised'] == 1 else 'layers'} random: Spearman {row['spearman']:+.3f}, SSIM {row['ssim']:.3f}")
        once = summary["all_at_once"]
        say(f"  all at once:           Spearman {once['spearman']:+.3f}, SSIM {once['ssim']:.3f}")
        say(f"randomisation test {'passed' if summary['passed'] else 'FAILED'}: {out}/index.html")
    return 0 if summary["passed"] else 1
