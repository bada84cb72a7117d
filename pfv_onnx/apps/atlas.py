"""``pfv-onnx atlas``: one card per component of a fitted basis, saying what its colour responds to.

The atlas itself is :mod:`pfv_onnx.analyses.atlas`'s and its page :mod:`pfv_onnx.render.atlas`'s; this module
shows a progress bar, writes the page (and the basis, when the atlas fitted it) and prints a line per
component.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..options import Options, given_flags
from ..pfv import PFV
from ..util.console import say, warn
from ..util.files import check_apart
from ..util.progress import progress_bar


def run(args: argparse.Namespace, options: Options) -> int:
    """Exit 0 when every image was read, 1 when some were skipped."""
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    check_apart(out, [args.basis] if args.basis else [], datasets=args.data)
    pfv = PFV(args.model, basis=args.basis, **given_flags(args))
    with progress_bar(enabled=not args.quiet, unit="image reads") as progress:
        result = pfv.atlas(args.data, top=args.top, batch_size=args.batch, dask=args.dask, progress=progress)
    result.save(out, overwrite=True)  # the command line claimed the folder, refusing a used one without --overwrite
    skipped = result.summary["skipped"]
    if not args.quiet:
        for c in result.summary["components"]:
            purities = [s["purity"] for s in c["sides"] if s["purity"] is not None]
            extra = f", purity {' / '.join(f'{p:.0%}' for p in purities)}" if purities else ""
            stability = "-" if c["stability"] is None else f"{c['stability']:.2f}"
            say(f"  component {c['component']}: {c['explained_variance_ratio']:.1%} of the variance, stability {stability}{extra}")
        say(f"wrote {out}/index.html")
    for skip in skipped:
        warn(f"skipped {skip['reason']}")
    return 1 if skipped else 0
