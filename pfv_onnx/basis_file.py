"""A fitted basis as one ``.npz`` file: arrays plus a small JSON header, refused when it does not fit.

Header fields: ``format``, ``version``, ``model_sha256`` (the model it was fitted with), ``taps``,
``final``, ``channels``, ``images``, and the options that shaped it (``n_components``, ``hierarchical``,
``n_sigma``, ``preset``, ``size``, ``resize``). Loading refuses, with one line each: a file that is not a
basis (or is truncated or damaged), a basis from a newer format version, and a basis from another model,
other layers, or other inputs (preset, size, resize). The method's options (components, hierarchical
weighting, clip) come from the basis itself.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from .version import __version__
from .core import FittedBasis, PrincipalComponents
from .core.normalise import Scaling, ValueStats
from .errors import PFVError
from .files import atomic_path

FORMAT = "pfv-onnx basis"
VERSION = 1
ARRAYS = ("mean", "components", "explained_variance", "scalars", "layer_peaks")


def save_basis(path: str | Path, basis: FittedBasis, header: dict) -> Path:
    """Write ``basis`` and ``header`` (see the module docstring) to ``path``, atomically."""
    if basis.scaling is None:
        raise PFVError("the basis is not fitted yet")
    path = Path(path)
    pca, s, a = basis.pca, basis.scaling, basis.activation
    full = {"format": FORMAT, "version": VERSION, "pfv_onnx": __version__, **header,
            "images": basis.images, "hierarchical": basis.hierarchical, "n_sigma": basis.n_sigma,
            "solver": pca.solver, "n_samples": pca.n_samples}
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


def load_basis(path: str | Path) -> tuple[FittedBasis, dict]:
    """Read a basis file; returns the basis and its header.

    Raises:
        PFVError: not a basis file, truncated, or written by a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise PFVError(f"{path}: no such basis file")
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise PFVError(f"{path}: not a pfv-onnx basis file")
            if not isinstance(header.get("version"), int) or header["version"] > VERSION:
                raise PFVError(
                    f"{path}: basis format version {header.get('version')} is newer than this pfv-onnx "
                    f"reads (up to {VERSION}); upgrade pfv-onnx"
                )
            arrays = {name: np.array(data[name], dtype=np.float64) for name in ARRAYS}
        total, prescale, mean, std, lo, hi, count, a_total, a_squares, a_lo, a_hi = arrays["scalars"].tolist()
        components = arrays["components"]
        consistent = (
            components.ndim == 2
            and arrays["mean"].shape == (components.shape[1],)
            and arrays["explained_variance"].shape == (components.shape[0],)
            and arrays["layer_peaks"].ndim == 1
            and all(np.isfinite(a).all() for a in arrays.values())
        )
        if not consistent:
            raise PFVError(f"{path}: inconsistent basis arrays (damaged file?)")
        pca = PrincipalComponents(arrays["mean"], components, arrays["explained_variance"], total, int(header["n_samples"]), str(header["solver"]))
        basis = FittedBasis(
            pca, prescale, tuple(arrays["layer_peaks"].tolist()), bool(header["hierarchical"]), float(header["n_sigma"]),
            Scaling(mean, std, lo, hi), int(header["images"]), ValueStats(int(count), a_total, a_squares, a_lo, a_hi),
        )
    except PFVError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, TypeError, EOFError, AttributeError) as exc:
        raise PFVError(f"{path}: not a readable basis file (truncated or damaged: {type(exc).__name__})") from None
    return basis, header


def check_basis(header: dict, basis: FittedBasis, model_sha256: str | None, taps: list[str], final: str, inputs: dict, where: str) -> None:
    """Refuse a basis fitted on another model, other layers or other inputs (preset, size, resize) than
    the PFV it is given to."""
    if header.get("model_sha256") != model_sha256:
        raise PFVError(
            f"{where}: fitted on another model (SHA-256 {str(header.get('model_sha256'))[:12]}, "
            f"{header.get('model_path')}), not this one ({str(model_sha256)[:12]})"
        )
    if header.get("taps") != taps or header.get("final") != final or len(basis.layer_peaks) != max(len(taps), 1):
        raise PFVError(f"{where}: fitted on other layers (final {header.get('final')}); use the same --layers/--final")
    for option, value in inputs.items():
        if header.get(option) != value:
            raise PFVError(f"{where}: fitted with {option} {header.get(option)}, not {value}; use the same --{option}")
