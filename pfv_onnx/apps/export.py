"""``pfv-onnx export``: a tapped copy of a model that outputs ``A^b`` and ``F_N`` on any ONNX runtime."""

from __future__ import annotations

import argparse

from ..console import plural, say
from ..files import check_output_file
from ..options import Options
from ..tapping import export


def run(args: argparse.Namespace, options: Options) -> int:
    dst = check_output_file(args.dst, args.overwrite)
    outputs = export(args.src, dst, layers=options.layers, final=options.final, keep_logits=options.keep_logits, size=options.size,
                     preset=options.preset, labels=options.labels)
    if args.quiet:
        return 0
    say(f"wrote {dst}: {plural(len(outputs.taps), 'tap')} feed A^b, F_N = {outputs.final}")
    for i, (tap, name) in enumerate(zip(outputs.taps, outputs.maps)):
        say(f"  tap {i}: {tap} -> {name}")
    say("  outputs: " + ", ".join([*outputs.original, outputs.final, *outputs.maps, *([outputs.activation] if outputs.activation else [])]))
    if outputs.activation is None:
        say("  no A^b output: the model's input size is open (fix it with --size H W)")
    return 0
