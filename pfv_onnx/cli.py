"""The ``pfv-onnx`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import __version__, bundled
from .errors import PFVError


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (and exit code 2, as argparse's own)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"pfv-onnx: error: {message} (see {self.prog} --help)\n")


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def _add_tap_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layers", type=_names, help="comma-separated tensor names feeding the activation map (default: the tap rule)")
    parser.add_argument("--final", help="tensor name of the final layer F_N that is decomposed (default: the last tap)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pfv-onnx", description="Principal Feature Visualisation for CNNs in ONNX.")
    parser.add_argument("--version", action="version", version=f"pfv-onnx {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    export = commands.add_parser("export", help="write a tapped copy of a model that outputs A^b and F_N")
    export.add_argument("src", help="the ONNX model to tap (or a bundled model's name)")
    export.add_argument("dst", help="path of the tapped .onnx file to write")
    _add_tap_options(export)
    export.add_argument("--no-logits", action="store_true", help="drop the model's own outputs and the head that computes them")
    export.add_argument("--overwrite", action="store_true", help="replace DST if it exists")

    demo = commands.add_parser("demo", help="PFV of the bundled sample photos with the bundled MobileNetV2")
    demo.add_argument("--out", default="pfv-demo", help="folder to write the pictures to (default: pfv-demo)")
    demo.add_argument("--model", default=bundled.DEFAULT_MODEL, help=f"bundled model or .onnx path (default: {bundled.DEFAULT_MODEL})")
    demo.add_argument("--provider", action="append", help="onnxruntime execution provider (repeatable; default: CUDA if available, else CPU)")
    return parser


def _export(args: argparse.Namespace) -> int:
    from .tapping import export

    dst = Path(args.dst)
    if dst.exists() and not args.overwrite:
        raise PFVError(f"{dst}: exists already (use --overwrite to replace it)")
    outputs = export(bundled.resolve_model(args.src), dst, layers=args.layers, final=args.final, keep_logits=not args.no_logits)
    print(f"wrote {dst}: {len(outputs.taps)} taps feed A^b, F_N = {outputs.final}")
    for i, (tap, name) in enumerate(zip(outputs.taps, outputs.maps)):
        print(f"  tap {i}: {tap} -> {name}")
    print(f"  outputs: {', '.join([*outputs.original, outputs.final, *outputs.maps, outputs.activation or ''])}".rstrip(", "))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .pipeline import PFV
    from .render import colour_map, mosaic, to_uint8, write_png

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PFVError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    pfv = PFV(args.model, providers=args.provider)
    result = pfv(bundled.sample_images())
    pfv_pictures = [to_uint8(rgb) for rgb in result.rgb]
    for name, picture in zip(result.names, pfv_pictures):
        write_png(out / f"{name}_pfv.png", picture)
    assert result.images is not None
    # One colour scale for the batch; the 99th percentile, since zero padding makes a few border pixels extreme.
    scale = (float(result.activation.min()), float(np.percentile(result.activation, 99)))
    rows = [list(result.images), [colour_map(a, *scale) for a in result.activation], pfv_pictures]
    write_png(out / "mosaic.png", mosaic(rows))
    predictions = result.top_k(1) if result.logits is not None else [[]] * len(result.names)
    for name, top in zip(result.names, predictions):
        label = f"{top[0][1] or top[0][0]} ({top[0][2]:.0%})" if top else ""
        print(f"  {name}: {label}")
    ratios = ", ".join(f"{r:.1%}" for r in result.explained_variance_ratio)
    print(f"wrote {len(result.names) + 1} pictures to {out}/ (explained variance of R, G, B: {ratios})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"export": _export, "demo": _demo}[args.command](args)
    except PFVError as exc:
        print(f"pfv-onnx: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("pfv-onnx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
