"""The ``pfv-onnx`` command line: ``explain``, ``fit``, ``debug``, ``survey``, ``sanity``, ``demo``, ``export``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__, bundled
from .core.decomposition import SOLVERS
from .errors import PFVError
from .preprocess import PRESETS, RESIZE_MODES
from .report import PICTURES


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (and exit code 2, as argparse's own)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"pfv-onnx: error: {message} (see {self.prog} --help)\n")


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def _seed(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layers", type=_names, help="comma-separated tensor names feeding the activation map (default: the tap rule)")
    parser.add_argument("--final", help="tensor name of the final layer F_N that is decomposed (default: the last tap)")
    parser.add_argument("--size", type=_positive, nargs=2, metavar=("H", "W"), help="input size for a model that leaves it open")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), help="pixel normalisation (default: the model's metadata, else imagenet)")
    parser.add_argument("--components", type=_positive, default=3, help="principal components kept (default 3; R, G, B show the first three)")
    parser.add_argument("--hierarchical", action="store_true", help="weight the components layer by layer, as the reference code does")
    parser.add_argument("--n-sigma", type=float, default=1.0, help="clip of the joint whitening, in standard deviations (default 1)")
    parser.add_argument("--solver", choices=SOLVERS, default="auto", help="PCA solver (default: chosen by shape)")
    parser.add_argument("--resize", choices=RESIZE_MODES, default="crop", help="crop: the ImageNet evaluation crop (default); stretch: the whole photo")
    parser.add_argument("--provider", action="append", help="onnxruntime execution provider, e.g. CUDA or CPU (repeatable; default: CUDA if available, else CPU)")
    parser.add_argument("--chunk", type=_positive, help="images per inference call (default: 8 on the CPU, 32 on a GPU); the results do not depend on it")


def _pfv_command(commands, name: str, help: str) -> argparse.ArgumentParser:
    """A command that opens a PFV: the model argument, and the options of the tap rule and the method."""
    parser = commands.add_parser(name, help=help)
    parser.add_argument("model", help=f"an .onnx file or a bundled model ({', '.join(bundled.MODELS)})")
    _add_model_options(parser)
    _add_run_options(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pfv-onnx", description="Principal Feature Visualisation for CNNs in ONNX.")
    parser.add_argument("--version", action="version", version=f"pfv-onnx {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    explain = _pfv_command(commands, "explain", "PFV pictures, a summary and an HTML report for image files and folders")
    explain.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    explain.add_argument("--out", required=True, help="folder to write to")
    explain.add_argument("--batch", type=_positive, help="images per PCA batch, in input order (default: all in one batch, or split evenly in batches of at most 64)")
    explain.add_argument("--pictures", type=_names, default=None, metavar="KINDS",
                         help="which pictures to write per image: comma-separated from pfv,overlay,activation,components (default: all)")
    explain.add_argument("--basis", help="a basis from 'pfv-onnx fit': colours fixed across batches instead of relative to each")
    explain.add_argument("--quiet", action="store_true", help="no progress bar and no closing line")
    explain.add_argument("--overwrite", action="store_true", help="write into a folder that is not empty (by default only an interrupted run of the same command is continued there)")

    fit = _pfv_command(commands, "fit", "fit a basis on a dataset, so that colours mean the same in every batch")
    fit.add_argument("inputs", nargs="+", metavar="DATA", help="image files or folders of images")
    fit.add_argument("--out", required=True, help="the basis file to write (.npz)")
    fit.add_argument("--batch", type=_positive, default=32, help="images read and run at a time (default 32; the basis does not depend on it)")
    fit.add_argument("--dask", metavar="ADDRESS", help="fit on Dask: a scheduler address, or 'local' for a local cluster of two worker processes")
    fit.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    fit.add_argument("--quiet", action="store_true", help="no closing line")

    debug = _pfv_command(commands, "debug", "why an image was misclassified: its components against examples of both classes")
    debug.add_argument("--image", required=True, help="the misclassified image")
    debug.add_argument("--true-class", required=True, nargs="+", metavar="DIR_OR_FILES", help="examples of its true class (three are used)")
    debug.add_argument("--predicted-class", required=True, nargs="+", metavar="DIR_OR_FILES", help="examples of the class it was taken for (three are used)")
    debug.add_argument("--out", required=True, help="folder to write to")
    debug.add_argument("--seed", type=_seed, default=0, help="which three examples a larger folder gives (default 0)")

    survey = _pfv_command(commands, "survey", "which classes of a folder-per-class dataset the model's features separate")
    survey.add_argument("dataset", help="a folder with one subfolder of images per class")
    survey.add_argument("--out", required=True, help="folder to write to")
    survey.add_argument("--per-class", type=_positive, default=1, help="images per class in the PFV batch (default 1)")
    survey.add_argument("--seed", type=_seed, default=0, help="seed of the sample and of the probe's split (default 0)")
    survey.add_argument("--probe", action="store_true", help="also train a linear classifier on the pooled final layer and compare")

    sanity = _pfv_command(commands, "sanity", "the randomisation test: does PFV change when the weights are destroyed?")
    sanity.add_argument("inputs", nargs="+", metavar="IMAGES", help="image files or folders of images")
    sanity.add_argument("--out", required=True, help="folder to write to")
    sanity.add_argument("--steps", type=_positive, default=8, help="steps of the cascade (default 8)")
    sanity.add_argument("--seed", type=_seed, default=0, help="seed of the random weights (default 0)")

    demo = commands.add_parser("demo", help="the paper's figures 2-4 on the bundled model and sample photos")
    demo.add_argument("--out", default="pfv-demo", help="folder to write to (default: pfv-demo)")
    demo.add_argument("--model", default=bundled.DEFAULT_MODEL, help=f"bundled model or .onnx path (default: {bundled.DEFAULT_MODEL})")
    demo.add_argument("--provider", action="append", help="onnxruntime execution provider (repeatable)")

    export = commands.add_parser("export", help="write a tapped copy of a model that outputs A^b and F_N")
    export.add_argument("src", help="the ONNX model to tap (or a bundled model's name)")
    export.add_argument("dst", help="path of the tapped .onnx file to write")
    _add_model_options(export)
    export.add_argument("--no-logits", action="store_true", help="drop the model's own outputs and the head that computes them")
    export.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    return parser


def _open(args: argparse.Namespace, basis: str | None = None):
    from .pipeline import PFV

    return PFV(
        bundled.resolve_model(args.model),
        layers=args.layers,
        final=args.final,
        providers=args.provider,
        chunk_size=args.chunk or "auto",
        preset=args.preset,
        n_components=args.components,
        hierarchical=args.hierarchical,
        n_sigma=args.n_sigma,
        solver=args.solver,
        resize=args.resize,
        size=tuple(args.size) if args.size else None,
        basis=basis,
    )


def _folder(path: str) -> Path:
    """An output folder: it may exist, but not as a file."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise PFVError(f"{out}: exists and is not a folder")
    return out


def _explain(args: argparse.Namespace) -> int:
    from .apps.explain import explain

    started = time.perf_counter()
    pfv = _open(args, basis=args.basis)
    out = Path(args.out)
    kinds = args.pictures or list(PICTURES)
    unknown = sorted(set(kinds) - set(PICTURES))
    if unknown:
        raise PFVError(f"--pictures: unknown kind {unknown[0]!r} (choose from {', '.join(PICTURES)})")
    summary = explain(pfv, args.inputs, out, batch=args.batch, show_progress=not args.quiet, overwrite=args.overwrite, pictures=kinds)
    skipped = summary["skipped"]
    if not args.quiet:
        n, batches = len(summary["images"]), len(summary["batches"])
        note = f", skipped {len(skipped)} (see summary.json)" if skipped else ""
        print(f"explained {n} images in {batches} batch{'es' if batches != 1 else ''} in {time.perf_counter() - started:.1f} s{note}: {out}/index.html")
    for skip in skipped:
        print(f"pfv-onnx: skipped {skip['reason']}", file=sys.stderr)
    return 1 if skipped else 0


def _fit(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise PFVError(f"{out}: exists already (use --overwrite to replace it)")
    if not out.parent.is_dir():
        raise PFVError(f"{out.parent}: no such folder")
    started = time.perf_counter()
    pfv = _open(args).fit(args.inputs, batch_size=args.batch, dask=args.dask)
    pfv.save_basis(out)
    if not args.quiet:
        ratios = ", ".join(f"{r:.1%}" for r in pfv.basis.pca.explained_variance_ratio)
        print(f"fitted a basis on {pfv.basis.images} images in {time.perf_counter() - started:.1f} s (explained variance {ratios}): {out}")
    for skip in pfv.fit_skipped:
        print(f"pfv-onnx: skipped {skip['reason']}", file=sys.stderr)
    return 1 if pfv.fit_skipped else 0


def _debug(args: argparse.Namespace) -> int:
    from .apps.debug import debug

    out = _folder(args.out)
    summary = debug(_open(args), args.image, args.true_class, args.predicted_class, out, seed=args.seed)
    top = summary["prediction"][0] if summary["prediction"] else None
    if top:
        print(f"predicted: {top['label'] or top['class']} ({top['probability']:.0%})")
    for line in summary["verdict"]:
        print(line)
    print(f"wrote {out}/index.html")
    return 0


def _survey(args: argparse.Namespace) -> int:
    from .apps.survey import survey

    out = _folder(args.out)
    summary = survey(_open(args), Path(args.dataset), out, per_class=args.per_class, seed=args.seed, probe=args.probe)
    pairs = "; ".join(f"{a} and {b}" for a, b in (p["classes"] for p in summary["predicted_confusions"]))
    print(f"PFV predicts these classes to be confused: {pairs}")
    if "probe" in summary:
        p = summary["probe"]
        print(f"linear probe: {p['accuracy']:.1%} held-out accuracy (chance {p['chance']:.0%}); similarity vs confusion rank correlation {p['similarity_vs_confusion']:.2f}")
    print(f"wrote {out}/index.html")
    return 0


def _sanity(args: argparse.Namespace) -> int:
    from .apps.sanity import sanity

    out = _folder(args.out)
    summary = sanity(_open(args), args.inputs, out, steps=args.steps, seed=args.seed)
    for row in summary["cascade"]:
        print(f"  top {row['randomised']:>3} layers random: Spearman {row['spearman']:+.3f}, SSIM {row['ssim']:.3f}")
    once = summary["all_at_once"]
    print(f"  all at once:           Spearman {once['spearman']:+.3f}, SSIM {once['ssim']:.3f}")
    print(f"randomisation test {'passed' if summary['passed'] else 'FAILED'}: {out}/index.html")
    return 0 if summary["passed"] else 1


def _demo(args: argparse.Namespace) -> int:
    from .apps.demo import demo

    out = _folder(args.out)
    written = demo(out, args.model, args.provider)
    print(f"wrote {len(written)} files to {out}/: open {out}/index.html")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .tapping import export

    dst = Path(args.dst)
    if dst.exists() and not args.overwrite:
        raise PFVError(f"{dst}: exists already (use --overwrite to replace it)")
    size = tuple(args.size) if args.size else None
    outputs = export(args.src, dst, layers=args.layers, final=args.final, keep_logits=not args.no_logits, size=size)
    print(f"wrote {dst}: {len(outputs.taps)} taps feed A^b, F_N = {outputs.final}")
    for i, (tap, name) in enumerate(zip(outputs.taps, outputs.maps)):
        print(f"  tap {i}: {tap} -> {name}")
    print("  outputs: " + ", ".join([*outputs.original, outputs.final, *outputs.maps, *([outputs.activation] if outputs.activation else [])]))
    if outputs.activation is None:
        print("  no A^b output: the model's input size is open (fix it with --size H W)")
    return 0


COMMANDS = {"explain": _explain, "fit": _fit, "debug": _debug, "survey": _survey, "sanity": _sanity, "demo": _demo, "export": _export}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except PFVError as exc:
        print(f"pfv-onnx: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a folder that cannot be written, a full disk
        where = f": {exc.filename}" if exc.filename else ""
        print(f"pfv-onnx: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ": run the same command again to resume" if args.command == "explain" else ""
        print(f"pfv-onnx: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
