"""The options of PFV: one frozen object, validated once, that every layer reads.

``PFV.describe()``, the keywords that open the same PFV elsewhere, a basis file's header and the command line
are views of it: the fields are grouped (:data:`GROUPS`), and each field's metadata names its command-line
flag, so adding an option is one field here. Values are checked and normalised as the object is made (NumPy integers become ``int``, lists
become tuples); a bad value raises :class:`OptionError`, one line naming the option.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import PFVError
from .presets import PRESETS

SOLVERS = ("auto", "covariance", "gram", "randomized")
# The maps that weight the components (made in pfv_onnx.core.activation, which imports nothing of the package, so
# the names are defined here): focus is the default, paper the paper's A^b.
WEIGHTINGS = ("focus", "paper", "final")
RESIZE_MODES = ("crop", "stretch")
# The pictures a report can hold per image (pfv_onnx.render.report).
PICTURES = ("pfv", "overlay", "activation", "components")
# model: what is tapped, at which input size; images: how photos become the model's input; method: how
# features become colours (a fitted basis fixes these); runtime: how the model runs (never changes a
# number on the CPU); export: what a tapped model keeps.
GROUPS = ("model", "images", "method", "runtime", "export")
# A clip of the joint whitening below this many standard deviations leaves two colours, not a picture.
MIN_N_SIGMA = 0.1
# onnxruntime starts every intra-op thread it is given (each with its own stack), and threads beyond the
# cores only wait for them: more than any machine pfv-onnx runs on has is a mistake, not a setting.
MAX_THREADS = 1024


def given_flags(namespace: Any) -> dict[str, Any]:
    """The option values a parsed command line set: ``{field: value}`` for each flag given (an absent flag
    is ``None`` in the namespace and left out)."""
    values = {f.name: getattr(namespace, f.name, None) for f in dataclasses.fields(Options)}
    return {name: value for name, value in values.items() if value is not None}


class OptionError(PFVError):
    """An option with a value PFV cannot use: ``option`` names it, ``problem`` says what is wrong. A problem
    that names other options (``mentions``) holds a ``{}`` for each, which the message fills with their
    names here, and the command line with their flags (:meth:`worded`)."""

    def __init__(self, option: str, problem: str, *, mentions: Sequence[str] = ()):
        self.option = option
        self.mentions = tuple(mentions)
        self.template = problem
        self.problem = self.worded(lambda name: name)
        super().__init__(f"{option} {self.problem}")

    def worded(self, name: Callable[[str], str]) -> str:
        """The problem, each option it mentions called ``name(option)``."""
        return self.template.format(*map(name, self.mentions)) if self.mentions else self.template


def field_type_problem(record: dict[str, Any], types: dict[str, type]) -> str | None:
    """The first field of a JSON ``record`` (a basis file's header, a model's metadata) that is not of the
    type ``types`` names, in words (``"hierarchical is 'no', not a bool"``), or ``None`` when all are.

    As strict as JSON itself: a bool is ``true`` or ``false`` only (never a string or a number, which
    ``bool()`` would take as true), an int or a float is never a bool, and a float may be written as an int.
    """
    for name, kind in types.items():
        value = record.get(name)
        if not isinstance(value, (int, float) if kind is float else kind) or (kind is not bool and isinstance(value, bool)):
            return f"{name} is {value!r}, not a {kind.__name__}"
    return None


# Checks: each validates one value and returns it normalised, or raises OptionError naming the option.


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive_int(name: str, value: Any) -> int:
    if not _is_int(value) or value < 1:
        raise OptionError(name, f"must be a positive integer, got {value!r}")
    return int(value)


def _at_most(maximum: int):
    """A positive integer of at most ``maximum``."""

    def check(name: str, value: Any) -> int:
        if not _is_int(value) or not 1 <= value <= maximum:
            raise OptionError(name, f"must be a positive integer of at most {maximum:,}, got {value!r}")
        return int(value)

    return check


def _optional(check):
    return lambda name, value: None if value is None else check(name, value)


def _flag(name: str, value: Any) -> bool:
    if not (isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", None) == "b"):  # NumPy's bool too
        raise OptionError(name, f"must be True or False, got {value!r}")
    return bool(value)


def _choice(choices: Sequence[str]):
    def check(name: str, value: Any) -> str:
        if value not in choices:
            raise OptionError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    return check


def _names(name: str, value: Any) -> tuple[str, ...] | None:
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not all(isinstance(n, str) and n for n in names):
        raise OptionError(name, f"must be a list of non-empty names, got {value!r}")
    return tuple(dict.fromkeys(names)) or None


def _name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise OptionError(name, f"must be a non-empty name, got {value!r}")
    return value


def _size(name: str, value: Any) -> tuple[int, int]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2 or not all(_is_int(v) and v >= 1 for v in value):
        raise OptionError(name, f"must be two positive integers (height, width), got {value!r}")
    return int(value[0]), int(value[1])


def _at_least(minimum: float):
    def check(name: str, value: Any) -> float:
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) or value < minimum:
            raise OptionError(name, f"must be a number of at least {minimum:g}, got {value!r}")
        return float(value)

    return check


def _chunk(name: str, value: Any) -> int | str | None:
    if value is None or value == "auto":
        return value
    if not _is_int(value) or value < 1:
        raise OptionError(name, f"must be a positive integer, 'auto' or None, got {value!r}")
    return int(value)


def _option(group: str, default: Any, check: Callable[[str, Any], Any], flag: str | None = None, help: str = "", **cli: Any) -> Any:
    """A field of :class:`Options`: its group, the check that validates and normalises its value, and its
    command-line flag with argparse's keywords."""
    return field(default=default, metadata={"group": group, "check": check, "flag": flag, "help": help, "cli": cli})


@dataclass(frozen=True)
class Options:
    """Everything that shapes a PFV run (see the module docstring; field groups in :data:`GROUPS`).

    Attributes:
        layers: tensor names feeding ``A^b`` instead of the tap rule (the last one is ``F_N`` unless ``final``).
        final: tensor name of ``F_N``.
        size: ``(H, W)`` fed to a model that leaves its input size open (default 224 x 224).
        grid: ``(h, w)`` of a vision transformer's patch tokens, where the graph does not tell it.
        preset: pixel normalisation (:data:`pfv_onnx.presets.PRESETS`); ``None``: the model's metadata
            ``preset`` entry, else ``imagenet``.
        labels: class names for the model's outputs: a file with one per line, or ``imagenet``; ``None``:
            the model's metadata ``labels`` entry, else none (:mod:`pfv_onnx.images.labels`).
        resize: ``crop`` (the ImageNet evaluation crop) or ``stretch`` (the whole photo).
        n_components: principal components kept (``rgb`` shows the first three).
        hierarchical: weight the components layer by layer (the reference code's variant).
        n_sigma: clip of the joint whitening, in standard deviations.
        weighting: the map that weights the components (:data:`WEIGHTINGS`): ``focus`` (the default),
            ``paper`` (the paper's ``A^b``, and what the hierarchical weighting uses), or ``final``.
        solver: PCA solver (:data:`SOLVERS`; ``auto`` chooses by shape).
        providers: onnxruntime execution providers; ``None``: CUDA when available, else CPU.
        chunk_size: images per inference call; ``"auto"``: 8 on the CPU, 32 on an accelerator; ``None``:
            the whole batch in one call. A model with a fixed batch runs in chunks of that size.
        threads: onnxruntime intra-op threads, at most :data:`MAX_THREADS` (``None``: onnxruntime's default).
        activation_in_graph: compute ``A^b`` inside the graph; ``None``: on an accelerator only.
        statistics_in_graph: for colours relative to the batch, compute ``F_N``'s channel sums and ``C x C``
            scatter inside the graph and project it there, so that ``F_N`` stays on the device; ``None``: on a
            GPU provider (CUDA, TensorRT) only.
        keep_logits: keep the model's own outputs (needed for predictions).
    """

    layers: tuple[str, ...] | None = _option(
        "model", None, _optional(_names),
        "--layers", "comma-separated tensor names feeding the activation map (default: the tap rule)", type="names")
    final: str | None = _option(
        "model", None, _optional(_name),
        "--final", "tensor name of the final layer F_N that is decomposed (default: the last tap)")
    size: tuple[int, int] | None = _option(
        "model", None, _optional(_size),
        "--size", "input size for a model that leaves it open", type=int, nargs=2, metavar=("H", "W"))
    grid: tuple[int, int] | None = _option(
        "model", None, _optional(_size),
        "--grid", "a vision transformer's grid of patch tokens, where the graph does not tell it", type=int, nargs=2, metavar=("H", "W"))
    preset: str | None = _option(
        "images", None, _optional(_choice(sorted(PRESETS))),
        "--preset", "pixel normalisation (default: the model's metadata, else imagenet)", choices=sorted(PRESETS))
    labels: str | None = _option(
        "model", None, _optional(_name),
        "--labels", "class names: a text file with one per line, or imagenet (default: the model's metadata, else none)", metavar="FILE")
    resize: str = _option(
        "images", "crop", _choice(RESIZE_MODES),
        "--resize", "crop: the ImageNet evaluation crop (default); stretch: the whole photo", choices=RESIZE_MODES)
    n_components: int = _option(
        "method", 3, _positive_int,
        "--components", "principal components kept (default 3; R, G, B show the first three)", type="count")
    hierarchical: bool = _option(
        "method", False, _flag,
        "--hierarchical", "weight the components layer by layer, as the reference code does", action="store_true")
    n_sigma: float = _option(
        "method", 1.0, _at_least(MIN_N_SIGMA),
        "--n-sigma", "clip of the joint whitening, in standard deviations (default 1)", type=float)
    solver: str = _option(
        "method", "auto", _choice(SOLVERS),
        "--solver", "PCA solver (default: chosen by shape)", choices=SOLVERS)
    weighting: str | None = _option(
        "method", None, _optional(_choice(WEIGHTINGS)),
        "--weighting", "the map that weights the components: focus (default: the response beyond a featureless image), "
        "paper (the paper's activation map), final (the last layer's channel sum)", choices=WEIGHTINGS)
    providers: tuple[str, ...] | None = _option(
        "runtime", None, _optional(_names),
        "--provider", "onnxruntime execution provider, e.g. CUDA or CPU (repeatable; default: CUDA if available, else CPU)",
        action="append")
    chunk_size: int | str | None = _option(
        "runtime", "auto", _chunk,
        "--chunk", "images per inference call (default: 8 on the CPU, 32 on a GPU); the results do not depend on it", type="count")
    threads: int | None = _option(
        "runtime", None, _optional(_at_most(MAX_THREADS)),
        "--threads", f"onnxruntime intra-op threads (default: onnxruntime's choice; at most {MAX_THREADS})", type="count")
    activation_in_graph: bool | None = _option("runtime", None, _optional(_flag))
    statistics_in_graph: bool | None = _option("runtime", None, _optional(_flag))
    keep_logits: bool = _option(
        "export", True, _flag,
        "--no-logits", "drop the model's own outputs and the head that computes them", action="store_false")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.metadata["check"](f.name, getattr(self, f.name)))
        if self.weighting is None:  # the hierarchical weighting is the paper's, layer by layer
            object.__setattr__(self, "weighting", "paper" if self.hierarchical else "focus")
        elif self.hierarchical and self.weighting != "paper":
            raise OptionError("weighting", f"must be paper for the hierarchical weighting (the reference code's), got {self.weighting!r}")

    def replace(self, **changes: Any) -> Options:
        """A copy with ``changes`` (validated like the original)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise OptionError(unknown[0], f"is not an option (options: {', '.join(f.name for f in dataclasses.fields(self))})")
        if changes.get("hierarchical") and "weighting" not in changes:
            changes["weighting"] = "paper"  # the hierarchical weighting is the paper's
        return dataclasses.replace(self, **changes)

    def weighted(self, weighting: str) -> Options:
        """A copy that weights by ``weighting``, hierarchically only when it is the paper's and these options are."""
        return self.replace(weighting=weighting, hierarchical=self.hierarchical and weighting == "paper")

    def view(self, *groups: str) -> dict[str, Any]:
        """The fields of ``groups`` (all when none is named) as JSON data: tuples become lists."""
        return {
            f.name: list(value) if isinstance(value := getattr(self, f.name), tuple) else value
            for f in dataclasses.fields(self)
            if not groups or f.metadata["group"] in groups
        }

    def set_fields(self) -> set[str]:
        """The fields whose values differ from the defaults."""
        defaults = Options()
        return {f.name for f in dataclasses.fields(self) if getattr(self, f.name) != getattr(defaults, f.name)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Options:
        """The options a :meth:`view` of all groups describes (the inverse of ``view()``)."""
        return cls().replace(**data)
