"""``pfv-onnx export``: a tapped copy of a model that outputs ``A^b`` and ``F_N`` on any ONNX runtime, and with
``--basis`` the PFV picture itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..util.console import plural, say
from ..options import Options
from ..util.files import check_apart
from ..exporting import export
from ..analyses.in_graph import SHAPES


def run(args: argparse.Namespace, options: Options) -> int:
    dst = Path(args.dst)  # checked and held by the command line (OUTPUTS)
    check_apart(dst, [path for path in (args.src, args.basis) if path])
    outputs = export(args.src, dst, options, basis=args.basis, uint8=args.uint8, statistics=args.statistics, overwrite=args.overwrite)
    if args.quiet:
        return 0
    taps = plural(len(outputs.taps), "tap")
    say(f"wrote {dst}: " + (f"the weighting reads {taps}" if outputs.picture else f"{taps} feed A^b") + f", F_N = {outputs.final}")
    for i, (tap, name) in enumerate(zip(outputs.taps, outputs.maps)):
        say(f"  tap {i}: {tap} -> {name}")
    say("  outputs: " + ", ".join([*outputs.original, outputs.final, *outputs.maps, *(n for n in (outputs.activation, outputs.picture) if n), *(outputs.statistics or ())]))
    if outputs.picture:
        say(f"  the PFV picture under {args.basis}: {outputs.picture}, {SHAPES['NHWC' if args.uint8 else 'NCHW']}")
    if outputs.activation is None and not outputs.picture:
        say("  no A^b output: the model's input size is open (fix it with --size H W)")
    return 0
