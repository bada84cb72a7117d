"""A fitted basis as one ``.npz`` file: arrays plus a small JSON header, refused when it does not fit.

Header fields: ``format``, ``version``, ``model_sha256`` (the model it was fitted with), ``taps``,
``final``, ``channels``, ``images``, and the options that shaped it (``n_components``, ``hierarchical``,
``n_sigma``, ``preset``, ``size``, ``resize``). Loading refuses, with one line each: a file that is not a
basis (or is truncated), a basis from a newer format version, and a basis from another model or layers.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from . import __version__
from .core import FittedBasis, PrincipalComponents
from .core.normalise import Scaling
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
    pca, s = basis.pca, basis.scaling
    full = {"format": FORMAT, "version": VERSION, "pfv_onnx": __version__, **header,
            "images": basis.images, "hierarchical": basis.hierarchical, "n_sigma": basis.n_sigma,
            "solver": pca.solver, "n_samples": pca.n_samples}
    scalars = np.array([pca.total_variance, basis.prescale, s.mean, s.std, s.lo, s.hi])
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
            if header.get("format") != FORMAT:
                raise PFVError(f"{path}: not a pfv-onnx basis file")
            if not isinstance(header.get("version"), int) or header["version"] > VERSION:
                raise PFVError(
                    f"{path}: basis format version {header.get('version')} is newer than this pfv-onnx "
                    f"reads (up to {VERSION}); upgrade pfv-onnx"
                )
            arrays = {name: np.array(data[name]) for name in ARRAYS}
    except PFVError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as exc:
        raise PFVError(f"{path}: not a readable basis file (truncated or damaged: {type(exc).__name__})") from None
    total, prescale, mean, std, lo, hi = arrays["scalars"].tolist()
    components = arrays["components"]
    if components.ndim != 2 or components.shape[1] != arrays["mean"].shape[0] or len(arrays["explained_variance"]) != len(components):
        raise PFVError(f"{path}: inconsistent basis arrays")
    pca = PrincipalComponents(arrays["mean"], components, arrays["explained_variance"], total, header["n_samples"], header["solver"])
    basis = FittedBasis(
        pca, prescale, tuple(arrays["layer_peaks"].tolist()), bool(header["hierarchical"]), float(header["n_sigma"]),
        Scaling(mean, std, lo, hi), int(header["images"]),
    )
    return basis, header


def check_basis(header: dict, model_sha256: str | None, taps: list[str], final: str, where: str) -> None:
    """Refuse a basis fitted on another model or other layers than the PFV it is given to."""
    if header.get("model_sha256") != model_sha256:
        raise PFVError(
            f"{where}: fitted on another model (SHA-256 {str(header.get('model_sha256'))[:12]}, "
            f"{header.get('model_path')}), not this one ({str(model_sha256)[:12]})"
        )
    if header.get("taps") != taps or header.get("final") != final:
        raise PFVError(f"{where}: fitted on other layers (final {header.get('final')}); use the same --layers/--final")
