"""Whether a basis fits what it is given to: the model (its features, layers, channels and the taps its
weighting reads), the inputs (preset, size, resize) and the method options a caller set. Each check
refuses with one line, and is defined here only: :class:`pfv_onnx.PFV`, :func:`pfv_onnx.export` and
:func:`pfv_onnx.analyses.in_graph.add_picture` call them. (What a basis file must hold to be a basis at
all is checked as it is read: :mod:`pfv_onnx.analyses.basis.file`.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core import FittedBasis
from ...core.activation import source_count
from ...errors import ModelError, PFVError
from ...options import OptionError, Options

if TYPE_CHECKING:
    from ...runtime.featurizer import Featurizer


def method_of(basis: FittedBasis) -> dict[str, Any]:
    """The method options a basis was fitted with."""
    return {"n_components": basis.pca.n_components, "hierarchical": basis.hierarchical, "n_sigma": basis.n_sigma, "weighting": basis.weighting}


def check_method(options: Options, method: dict[str, Any], given: set[str]) -> None:
    """Refuse, with one line, a method option in ``given`` (the options set by the caller) that a basis
    fixes to another value."""
    for name, fixed in method.items():
        value = getattr(options, name)
        if name in given and value != fixed:
            raise OptionError(name, f"is {value!r} here but {fixed!r} in the basis, which fixes the method: leave it out, or fit another basis")


def inputs_of(options: Options, size: tuple[int, int]) -> dict[str, Any]:
    """How images become the model's input (the options' ``images`` group and the input ``size``), as a
    basis file's header records them: a basis fits only inputs made the same way."""
    return {**options.view("images"), "size": list(size)}


def check_fitted(basis: FittedBasis) -> None:
    """Refuse a basis without its normalisation (the second pass of the fit)."""
    if basis.scaling is None:
        raise PFVError("the basis is not fitted yet (it has no normalisation: fit it on data first)")


def check_header(
    header: dict[str, Any], model_sha256: str, features_sha256: str, taps: list[str], final: str, inputs: dict[str, Any], where: str
) -> None:
    """Refuse a basis file's ``header`` fitted on another model (one that computes other features), on other
    layers of this model file, or with other ``inputs`` (:func:`inputs_of`) than it is given to."""
    same_layers = header.get("taps") == taps and header.get("final") == final
    if not same_layers and header.get("model_sha256") == model_sha256:
        raise PFVError(f"{where}: fitted on other layers (final {header.get('final')}); use the same layers=/final=",
                       flags={"layers=/final=": "--layers/--final"})
    if not same_layers or header.get("features_sha256") != features_sha256:
        raise PFVError(
            f"{where}: fitted on another model ({header.get('model_path')}, features {str(header.get('features_sha256'))[:12]}), "
            f"not on this one (features {features_sha256[:12]})"
        )
    for option, value in inputs.items():
        if header.get(option) != value:
            raise PFVError(f"{where}: fitted with {option} {header.get(option)}, not {value}; use the same --{option}")


def check_weighting(basis: FittedBasis, weighting: str) -> None:
    """Refuse a basis of another weighting than the PFV's model was tapped for (it reads other taps)."""
    if basis.weighting != weighting:
        raise PFVError(f"this basis weights by {basis.weighting}, this PFV by {weighting}: open PFV(model, basis=...) to use it")


def check_layers(basis: FittedBasis, earlier: int) -> None:
    """Refuse a basis whose weighting divides by another number of sources than it reads from a model of
    ``earlier`` earlier taps."""
    sources = source_count(basis.weighting, earlier)
    if len(basis.layer_peaks) != sources:
        raise ModelError(f"the basis weights {len(basis.layer_peaks)} layers, the model's {basis.weighting} weighting reads {sources}")


def check_channels(basis: FittedBasis, channels: int, final: str, where: str | None = None) -> None:
    """Refuse a basis of another number of channels than the model's ``F_N`` (``final``) has; ``where``: the
    basis file, named first in the message."""
    if basis.pca.mean.shape[0] != channels:
        named = f"{where}: " if where is not None else ""
        raise ModelError(f"{named}the basis has {basis.pca.mean.shape[0]} channels, this model's F_N ({final}) has {channels}")


def check_fits(basis: FittedBasis, header: dict[str, Any] | None, featurizer: Featurizer, inputs: dict[str, Any], where: str) -> None:
    """Every check that ``basis`` (with its file's ``header``, or ``None`` for a basis in memory) fits the
    model ``featurizer`` runs and its ``inputs``; ``where`` names the file."""
    check_weighting(basis, featurizer.weighting)
    if header is not None:
        check_header(header, featurizer.model_sha256, featurizer.features_sha256, featurizer.taps, featurizer.final, inputs, where)
    # A file's header may say anything of the model: its channels are checked against the model itself.
    check_channels(basis, featurizer.final_channels, featurizer.final, where if header is not None else None)
    check_layers(basis, len(featurizer.taps))
