"""``pfv-onnx fit``: a basis fitted on a dataset, so that colours mean the same in every batch."""

from __future__ import annotations

import argparse
from pathlib import Path
import time

from ..util.console import plural, say, warn
from ..util.files import check_apart
from ..util.progress import progress_bar
from ..options import Options
from ..pfv import PFV


def run(args: argparse.Namespace, options: Options) -> int:
    """Exit 0 when every input was read, 1 when some were skipped."""
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    check_apart(out, args.inputs)
    started = time.perf_counter()
    with progress_bar(enabled=not args.quiet, unit="image reads") as progress:
        pfv = PFV(args.model, options).fit(args.inputs, batch_size=args.batch, dask=args.dask, progress=progress)
    pfv.save_basis(out)
    if not args.quiet:
        ratios = ", ".join(f"{r:.1%}" for r in pfv.basis.pca.explained_variance_ratio)
        say(f"fitted a basis on {plural(pfv.basis.images, 'image')} in {time.perf_counter() - started:.1f} s (explained variance {ratios}): {out}")
    for skip in pfv.fit_skipped:
        warn(f"skipped {skip['reason']}")
    return 1 if pfv.fit_skipped else 0
