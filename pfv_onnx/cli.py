"""The ``pfv-onnx`` command line: argument parsing only.

Each command's work is ``run(args, options)`` in its module under :mod:`pfv_onnx.apps`, imported when the
command runs, so ``pfv-onnx --help`` imports neither onnx, onnxruntime nor OpenCV. The flags of
:class:`~pfv_onnx.options.Options` come from its fields; every command that writes takes ``--quiet`` and
``--overwrite``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from .images import bundled
from .util.console import warn
from .errors import PFVError, PFVWarning, first_line
from .util.files import claimed_output_file, claimed_output_folder
from .options import PICTURES, OptionError, Options, given_flags
from .presets import PRESETS
from .version import __version__

ALL_GROUPS = ("model", "images", "method", "runtime")
# Exit codes: 0 done, 1 done but some inputs skipped (or sanity failed), 2 bad usage or input, 3 a bug of
# ours, 130 interrupted.
INTERNAL_ERROR = 3
# What each command writes: its argument, and whether it is a folder or a file. It is checked, then held by
# one lock while the command runs, so that a second run writing it is refused and a finished one is not
# replaced without --overwrite (explain's journal holds the same lock on its folder, for a resume).
OUTPUTS = {
    "fit": ("out", claimed_output_file), "export": ("dst", claimed_output_file),
    **{command: ("out", claimed_output_folder) for command in ("debug", "survey", "sanity", "atlas", "evaluate", "demo", "web")},
}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (and exit code 2, as argparse's own)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"pfv-onnx: error: {message} (see {self.prog} --help)\n")


def _names(text: str) -> list[str]:
    return [name for name in text.split(",") if name]


def _count(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _add_option_flags(parser: argparse.ArgumentParser, groups: Sequence[str]) -> None:
    """The flags of the :class:`Options` fields in ``groups``; an absent flag leaves the field's default."""
    for f in dataclasses.fields(Options):
        meta = f.metadata
        if meta["group"] in groups and meta["flag"]:
            cli = dict(meta["cli"])
            if "type" in cli:
                cli["type"] = {"names": _names, "count": _count(1)}.get(cli["type"], cli["type"])
            parser.add_argument(meta["flag"], dest=f.name, default=None, help=meta["help"], **cli)


def options_from(args: argparse.Namespace) -> Options:
    """The :class:`Options` the parsed flags give."""
    return Options(**given_flags(args))


def _command(commands: Any, name: str, help: str, groups: Sequence[str] = ALL_GROUPS, model: bool = True) -> argparse.ArgumentParser:
    """A command: the model argument (when it opens one), the option flags of ``groups``, ``--quiet`` and
    ``--overwrite``."""
    parser = commands.add_parser(name, help=help, description=help)
    if model:
        parser.add_argument("model", help=f"an .onnx file or a bundled model ({', '.join(bundled.MODELS)})")
    _add_option_flags(parser, groups)
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no closing lines (errors and skipped inputs still go to stderr)")
    parser.add_argument("--overwrite", action="store_true", help="write over existing output")
    return parser


def _applications(commands: Any) -> None:
    """The paper's applications and the benchmark of the maps, as commands."""
    debug = _command(commands, "debug", "why an image was misclassified: its components against examples of both classes")
    debug.add_argument("--image", required=True, help="the misclassified image")
    debug.add_argument("--true-class", required=True, nargs="+", metavar="DIR_OR_FILES", help="examples of its true class (three are used)")
    debug.add_argument("--predicted-class", required=True, nargs="+", metavar="DIR_OR_FILES", help="examples of the class it was taken for (three are used)")
    debug.add_argument("--out", required=True, help="folder to write to")
    debug.add_argument("--seed", type=_count(0), default=0, help="which three examples a larger folder gives (default 0)")

    survey = _command(commands, "survey", "which classes of a folder-per-class dataset the model's features separate")
    survey.add_argument("dataset", help="a folder with one subfolder of images per class")
    survey.add_argument("--out", required=True, help="folder to write to")
    survey.add_argument("--per-class", type=_count(1), default=1, help="images per class in the PFV batch (default 1)")
    survey.add_argument("--seed", type=_count(0), default=0, help="seed of the sample and of the probe's split (default 0)")
    survey.add_argument("--probe", action="store_true", help="also train a linear classifier on the pooled final layer and compare")

    sanity = _command(commands, "sanity", "the randomisation test: does PFV change when the weights are destroyed?")
    sanity.add_argument("inputs", nargs="+", metavar="IMAGES", help="image files or folders of images")
    sanity.add_argument("--out", required=True, help="folder to write to")
    sanity.add_argument("--steps", type=_count(1), default=8, help="steps of the cascade (default 8)")
    sanity.add_argument("--seed", type=_count(0), default=0, help="seed of the random weights (default 0)")
    sanity.add_argument("--basis", help="a basis from 'pfv-onnx fit': its method options are the ones tested")

    atlas = _command(commands, "atlas", "what each component's colour responds to: its strongest images and patches, classes and stability")
    atlas.add_argument("data", nargs="+", metavar="DATA", help="image files, folders, or a folder with one subfolder of images per class")
    atlas.add_argument("--out", required=True, help="folder to write to")
    atlas.add_argument("--basis", help="a basis from 'pfv-onnx fit' (default: fit one on DATA first)")
    atlas.add_argument("--top", type=_count(1), default=8, help="images and patches shown per component and side (default 8)")
    atlas.add_argument("--batch", type=_count(1), default=32, help="images read and run at a time (default 32)")
    atlas.add_argument("--dask", metavar="ADDRESS", help="fit the basis (without --basis) and scan the data on Dask: a scheduler address, or 'local'")

    evaluate = _command(commands, "evaluate", "do PFV's maps point at the object and are they faithful? Against baselines and controls")
    evaluate.add_argument("--out", required=True, help="folder to write to")
    evaluate.add_argument("--objects", metavar="DIR", help="cut-out objects with transparency to paste on --backgrounds (default: the shipped set)")
    evaluate.add_argument("--backgrounds", metavar="DIR", help="photos to paste --objects on")
    evaluate.add_argument("--count", type=_count(1), help="composites to make (default 48)")
    evaluate.add_argument("--images", metavar="DIR", help="instead of composites: images whose objects --masks marks")
    evaluate.add_argument("--masks", metavar="DIR", help="one mask per image, of the same name: the object where it is not black")
    evaluate.add_argument("--batch", type=_count(1), help="images per PCA batch (default 16)")
    evaluate.add_argument("--steps", type=_count(2), help="steps of the deletion and insertion curves (default 20)")
    evaluate.add_argument("--dask", metavar="ADDRESS", help="run the batches on Dask: a scheduler address, or 'local' for a local cluster of two worker processes")
    evaluate.add_argument("--fill", choices=("blur", "mean"), default="blur", help="what removed pixels become: a blurred copy (default) or the mean colour")
    evaluate.add_argument("--no-faithfulness", action="store_true", help="localisation only (seconds instead of minutes)")
    evaluate.add_argument("--seed", type=_count(0), default=0, help="seed of the composites and of the random control (default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pfv-onnx", description="Principal Feature Visualisation for CNNs in ONNX.")
    parser.add_argument("--version", action="version", version=f"pfv-onnx {__version__}")
    parser.add_argument("--traceback", action="store_true", help="on an internal error, show the traceback")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    explain = _command(commands, "explain", "PFV pictures, a summary and an HTML report for image files and folders")
    explain.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders of images, or a folder with one subfolder of images per class")
    explain.add_argument("--out", required=True, help="folder to write to (an interrupted run of the same command there is continued)")
    explain.add_argument("--batch", type=_count(1), help="images per PCA batch, in input order, the classes of a folder-per-class root mixed in each "
                         "(default: all in one batch, or split evenly in batches of at most 64)")
    explain.add_argument("--pictures", type=_names, default=None, metavar="KINDS",
                         help=f"which pictures to write per image: comma-separated from {','.join(PICTURES)} (default: all)")
    explain.add_argument("--basis", help="a basis from 'pfv-onnx fit': colours fixed across batches instead of relative to each")
    explain.add_argument("--atlas", metavar="DIR", help="an atlas of the same basis (pfv-onnx atlas --basis): the report links each component to its card")

    fit = _command(commands, "fit", "fit a basis on a dataset, so that colours mean the same in every batch")
    fit.add_argument("inputs", nargs="+", metavar="DATA", help="image files, folders of images, or a folder with one subfolder of images per class")
    fit.add_argument("--out", required=True, help="the basis file to write (.npz)")
    fit.add_argument("--batch", type=_count(1), default=32, help="images read and run at a time (default 32; the basis does not depend on it)")
    fit.add_argument("--dask", metavar="ADDRESS", help="fit on Dask: a scheduler address, or 'local' for a local cluster of two worker processes")

    _applications(commands)

    demo = _command(commands, "demo", "the paper's figures 2-4 on the bundled model and sample photos", ("images", "runtime"), model=False)
    demo.add_argument("--out", default="pfv-demo", help="folder to write to (default: pfv-demo)")
    demo.add_argument("--model", default=bundled.DEFAULT_MODEL, help=f"bundled model or .onnx path (default: {bundled.DEFAULT_MODEL})")

    export = _command(commands, "export", "write a tapped copy of a model that outputs A^b and F_N, and with --basis the PFV picture", ("model", "export"), model=False)
    export.add_argument("src", help="the ONNX model to tap (or a bundled model's name)")
    export.add_argument("dst", help="path of the tapped .onnx file to write")
    export.add_argument("--preset", choices=sorted(PRESETS), help="write this pixel normalisation into the model's metadata")
    export.add_argument("--basis", help="a basis from 'pfv-onnx fit' on this model: the model also outputs the PFV picture under it (pfv_rgb)")
    export.add_argument("--statistics", action="store_true", help="also output F_N's channel sums and C x C scatter: relative colours on a GPU fetch only those (pfv_final_sum, pfv_channel_sums, pfv_scatter)")
    export.add_argument("--uint8", action="store_true", help="with --basis: the picture as (B, H, W, 3) uint8 instead of (B, 3, H, W) float32 in [0, 1]")

    web = _command(commands, "web", "a static page that runs a model exported with --basis in the browser and draws the PFV picture of dropped photos", ())
    web.add_argument("--out", required=True, help="folder to write the page to")
    web.add_argument("--samples", nargs="+", metavar="PHOTO", help="photos the page shows when it opens")
    web.add_argument("--ort-web", metavar="TGZ", help="onnxruntime-web's tarball (npm pack onnxruntime-web@1.30.0) instead of fetching it from the npm registry once")

    inspect = _command(commands, "inspect", "what PFV sees in a model: input, preset, labels, taps, final layer, the tensors --layers and --final accept", ("model", "images"))
    inspect.add_argument("--all", action="store_true", help="list every tensor --layers and --final accept, not only the last few")
    return parser


def _flag(option: str, args: argparse.Namespace) -> str:
    """The command-line flag of an :class:`Options` field, or of a keyword of the command's own that it
    takes as a flag of the same name (``uint8`` -> ``--uint8``); else the name itself."""
    meta = next((f.metadata for f in dataclasses.fields(Options) if f.name == option), None)
    if meta and meta["flag"]:
        return meta["flag"]
    return "--" + option.replace("_", "-") if option in vars(args) else option


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python warnings as one line each, without the source line."""
    text = message.on_command_line() if isinstance(message, PFVWarning) else str(message)
    warn(f"warning: {first_line(Warning(text))}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            app = importlib.import_module(f"pfv_onnx.apps.{args.command}")
            options = options_from(args)
            if args.command not in OUTPUTS:
                return app.run(args, options)
            name, claimed = OUTPUTS[args.command]
            with claimed(getattr(args, name), args.overwrite):
                return app.run(args, options)
    except OptionError as exc:
        warn(f"error: {_flag(exc.option, args)} {exc.worded(lambda name: _flag(name, args))}")
        return exc.exit_code
    except PFVError as exc:
        warn(f"error: {exc.on_command_line()}")
        return exc.exit_code
    except OSError as exc:  # a folder that cannot be written, a full disk
        where = f": {exc.filename}" if exc.filename else ""
        warn(f"error: {exc.strerror or exc}{where}")
        return 2
    except KeyboardInterrupt:
        warn("interrupted" + (": run the same command again to resume" if args.command == "explain" else ""))
        return 130
    except Exception as exc:  # a bug of ours: its own exit code, never taken for "some inputs were skipped"
        if args.traceback:
            raise
        warn(f"internal error: {type(exc).__name__}: {first_line(exc)} (pfv-onnx --traceback {args.command} ... shows where)")
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
