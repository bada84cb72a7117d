"""A fitted basis as one ``.npz`` file: arrays plus a small JSON header, refused when it is not a basis.

Header fields: ``format``, ``version``, ``features_sha256`` (the part of the model that computes the taps
and ``F_N``, weights included: :mod:`pfv_onnx.graph.identity`), ``model_sha256`` and ``model_path`` (the
file it was fitted with, for the message), ``taps``, ``final``, ``channels``, ``images``, ``n_samples``,
``solver``, and the options that shaped it (``n_components``, ``hierarchical``, ``n_sigma``, ``preset``,
``size``, ``resize``). Loading refuses, with one line each: a file that is not a basis (or is truncated,
damaged, or declares more data than a basis holds), values the float32 arithmetic of the pictures cannot
hold, a header whose fields have the wrong types or values, and a basis from another format version.
Whether a basis fits a model, its layers and its inputs (preset, size, resize) is checked where it is
given to one (:mod:`pfv_onnx.analyses.basis.checks`). The method's options (components, hierarchical
weighting, clip) come from the basis itself.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...core import FittedBasis, PrincipalComponents
from ...core.activation import source_count
from ...core.normalise import Scaling, ValueStats
from ...errors import PFVError
from ...util.files import atomic_path
from ...options import MIN_N_SIGMA, WEIGHTINGS, Options, field_type_problem
from ...version import __version__
from .checks import check_fitted, inputs_of

if TYPE_CHECKING:
    from ...runtime.featurizer import Featurizer

FORMAT = "pfv-onnx basis"
VERSION = 2
ARRAYS = ("mean", "components", "explained_variance", "scalars", "layer_peaks")
# A basis of 65,536 channels and as many components is 32 GiB: nothing real comes near these.
MAX_CHANNELS = 65_536
MAX_BYTES = 1 << 30  # the whole file, uncompressed
# Header fields and the types they must have.
HEADER_TYPES = {
    "version": int, "features_sha256": str, "taps": list, "final": str, "channels": int, "images": int,
    "n_samples": int, "solver": str, "n_components": int, "hierarchical": bool, "n_sigma": float, "size": list,
    "weighting": str,
}
# What the array ``scalars`` holds, in order.
SCALARS = ("total variance", "prescale", "normalisation mean", "normalisation spread", "clip lo", "clip hi", "activation count",
           "activation total", "activation squares", "activation lo", "activation hi")
# float32's largest number and its smallest normal one, as Python floats (compared with a float32, a float64
# beyond its range would overflow).
FLOAT32_MAX, FLOAT32_TINY = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)


def save_basis(path: str | Path, basis: FittedBasis, header: dict[str, Any]) -> Path:
    """Write ``basis`` and ``header`` (see the module docstring) to ``path``, atomically."""
    check_fitted(basis)
    path = Path(path)
    pca, s, a = basis.pca, basis.scaling, basis.activation
    full = {"format": FORMAT, "version": VERSION, "pfv_onnx": __version__, **header,
            "images": basis.images, "hierarchical": basis.hierarchical, "n_sigma": basis.n_sigma,
            "weighting": basis.weighting, "solver": pca.solver, "n_samples": pca.n_samples}
    activation = [a.count, a.total, a.squares, a.lo, a.hi] if a is not None else [0, 0.0, 0.0, 0.0, 0.0]
    scalars = np.array([pca.total_variance, basis.prescale, s.mean, s.std, s.lo, s.hi, *activation])
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                header=np.frombuffer(json.dumps(full).encode("utf-8"), dtype=np.uint8),
                mean=pca.mean, components=pca.components, explained_variance=pca.explained_variance,
                scalars=scalars, layer_peaks=np.array(basis.layer_peaks, dtype=np.float64),
            )
    return path


def header_of(featurizer: Featurizer, options: Options, basis: FittedBasis) -> dict[str, Any]:
    """What a basis file records of the model ``featurizer`` runs, its layers, and the ``options`` that
    shaped ``basis`` (the header's fields that :func:`save_basis` does not take from the basis itself)."""
    return {
        "features_sha256": featurizer.features_sha256,
        "model_sha256": featurizer.model_sha256,
        "model_path": featurizer.model_path,
        "taps": featurizer.taps,
        "final": featurizer.final,
        "channels": int(basis.pca.mean.shape[0]),
        **inputs_of(options, featurizer.size),
        **options.view("method"),
    }


def header_inputs(header: dict[str, Any]) -> dict[str, Any]:
    """How the images of a basis file's ``header`` were made, as options: ``preset``, ``size`` (a tuple) and
    ``resize``, each ``None`` where the header does not say."""
    size = tuple(header["size"]) if isinstance(header.get("size"), list) else None
    return {"preset": header.get("preset"), "size": size, "resize": header.get("resize")}


def load_basis(path: str | Path) -> tuple[FittedBasis, dict[str, Any]]:
    """Read a basis file; returns the basis and its header.

    Raises:
        PFVError: not a basis file, truncated or damaged, a header with wrong fields, or another format
            version.
    """
    path = Path(path)
    if not path.is_file():
        raise PFVError(f"{path}: no such basis file")
    try:
        with zipfile.ZipFile(path) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_BYTES:
                raise PFVError(f"{path}: declares more data than a basis holds (over {MAX_BYTES >> 20} MB)")
        with np.load(path, allow_pickle=False) as data:
            header = _header(json.loads(bytes(data["header"]).decode("utf-8")), path)
            arrays = {name: np.array(data[name], dtype=np.float64) for name in ARRAYS}
        basis = _basis(arrays, header, path)
    except PFVError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, TypeError, EOFError, AttributeError, MemoryError, RecursionError) as exc:
        raise PFVError(f"{path}: not a readable basis file (truncated or damaged: {type(exc).__name__})") from None
    return basis, header


def _header(header: Any, path: Path) -> dict[str, Any]:
    """The header, its format, version and field types checked."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise PFVError(f"{path}: not a pfv-onnx basis file")
    version = header.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > VERSION:
        raise PFVError(f"{path}: basis format version {version} is newer than this pfv-onnx reads (up to {VERSION}); upgrade pfv-onnx")
    if version < VERSION:
        raise PFVError(f"{path}: basis format version {version} was bound to the model file alone; fit the basis again")
    problem = field_type_problem(header, HEADER_TYPES)
    if problem:
        raise PFVError(f"{path}: damaged basis header: {problem}")
    if header["images"] < 1 or header["n_samples"] < 2 or not 1 <= header["n_components"] <= header["channels"] <= MAX_CHANNELS:
        raise PFVError(f"{path}: damaged basis header: {header['images']} images, {header['n_samples']} samples, "
                       f"{header['n_components']} components of {header['channels']} channels")
    if header["weighting"] not in WEIGHTINGS or (header["hierarchical"] and header["weighting"] != "paper"):
        raise PFVError(f"{path}: damaged basis header: weighting {header['weighting']!r}")
    if not (math.isfinite(header["n_sigma"]) and header["n_sigma"] >= MIN_N_SIGMA):
        raise PFVError(f"{path}: damaged basis header: n_sigma {header['n_sigma']}")
    return header


def _basis(arrays: dict[str, np.ndarray], header: dict[str, Any], path: Path) -> FittedBasis:
    """The basis the arrays hold, checked against the header and for values a fit can give."""
    total, prescale, mean, std, lo, hi, count, a_total, a_squares, a_lo, a_hi = arrays["scalars"].tolist()
    components = arrays["components"]
    k, channels = header["n_components"], header["channels"]
    consistent = (
        components.shape == (k, channels)
        and arrays["mean"].shape == (channels,)
        and arrays["explained_variance"].shape == (k,)
        and arrays["layer_peaks"].shape == (source_count("paper" if header["hierarchical"] else header["weighting"], len(header["taps"])),)
        and all(np.isfinite(a).all() for a in arrays.values())
    )
    if not consistent:
        raise PFVError(f"{path}: inconsistent basis arrays (damaged file?)")
    if not (prescale > 0 and std > 0 and hi > lo and count >= 1 and (arrays["layer_peaks"] > 0).all() and (arrays["explained_variance"] >= 0).all()):
        raise PFVError(f"{path}: damaged basis: a scale, spread or count that no fit gives (prescale {prescale:g}, spread {std:g}, "
                       f"range {lo:g} to {hi:g}, {count:g} activation values)")
    problem = _float32_problem(arrays)
    if problem:
        raise PFVError(f"{path}: damaged basis: {problem} (pictures are computed in float32)")
    pca = PrincipalComponents(arrays["mean"], components, arrays["explained_variance"], total, header["n_samples"], header["solver"])
    return FittedBasis(
        pca, prescale, tuple(arrays["layer_peaks"].tolist()), header["hierarchical"], float(header["n_sigma"]),
        Scaling(mean, std, lo, hi), header["images"], ValueStats(int(count), a_total, a_squares, a_lo, a_hi), header["weighting"],
    )


def _float32_problem(arrays: dict[str, np.ndarray]) -> str | None:
    """What float32 arithmetic cannot hold of a basis's finite float64 ``arrays``, in words, or ``None``.

    The NumPy core and the exported graph compute pictures in float32: every value, and the product and
    span the picture is made of (components times prescale, the projection of the features' mean, clip hi -
    lo), must be a float32 number, and
    the scales and divisors (prescale, spread, layer peaks) normal positive ones, whose reciprocals are
    float32 numbers too.
    """
    scalars = dict(zip(SCALARS, arrays["scalars"].tolist()))
    largest = {name: float(np.abs(a).max(initial=0.0)) for name, a in arrays.items() if name != "scalars"}
    # The projection of F_N's mean, before the prescale (NumPy) and after it (the graph): each picture projects
    # features of about that size.
    projected = float((np.abs(arrays["components"]) @ np.abs(arrays["mean"])).max(initial=0.0)) * max(1.0, scalars["prescale"])
    values = {**scalars, **largest, "components times prescale": largest["components"] * scalars["prescale"],
              "projection of the mean": projected, "clip span": scalars["clip hi"] - scalars["clip lo"]}
    for name, value in values.items():
        if abs(value) > FLOAT32_MAX:
            return f"{name} {value:g} is beyond float32's range"
    divisors = {"prescale": scalars["prescale"], "normalisation spread": scalars["normalisation spread"],
                **{f"layer peak {i + 1}": peak for i, peak in enumerate(arrays["layer_peaks"].tolist())}}
    for name, value in divisors.items():
        if value < FLOAT32_TINY:
            return f"{name} {value:g} is below float32's smallest normal number"
    return None
