"""``pfv_onnx.export``: a tapped copy of a model, or, with a fitted basis, one that outputs the PFV picture too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import onnx

from .analyses.basis_file import load_basis
from .core.fitted import FittedBasis
from .images import bundled
from .errors import ModelError
from .graph import TappedOutputs, load_model, read_tapped_outputs
from .analyses.in_graph import add_picture
from .options import OptionError, Options
from .pfv import PFV
from .runtime.tapping import save_model, tap_model


def export(
    src: str | Path | bytes | onnx.ModelProto,
    dst: str | Path,
    layers: list[str] | None = None,
    final: str | None = None,
    keep_logits: bool = True,
    size: tuple[int, int] | None = None,
    preset: str | None = None,
    labels: str | Sequence[str] | None = None,
    *,
    basis: str | Path | FittedBasis | None = None,
    uint8: bool = False,
    statistics: bool = False,
    resize: str | None = None,
) -> TappedOutputs:
    """Write the tapped model of ``src`` (a path, a bundled model's name, bytes or a ``ModelProto``) to
    ``dst`` and return what it outputs. ``preset`` (a preset's name) and ``labels`` (class names, a labels
    file, or ``imagenet``) are written into its metadata, where PFV finds them (:mod:`pfv_onnx.images.labels`).

    The file outputs ``F_N``, the channel-sum map of every earlier tap, ``A^b`` ``(B, 1, H0, W0)`` and,
    with ``keep_logits``, the model's own outputs unchanged; with ``statistics``, what colours relative to the
    batch need of ``F_N`` on an accelerator (:func:`pfv_onnx.graph.add_pfv_outputs`). It is written as
    :func:`pfv_onnx.runtime.tapping.save_model` writes. A model whose input size is open keeps it open and has no
    ``A^b`` output unless ``size`` fixes it (the per-layer maps and ``F_N`` are there either way).

    With ``basis`` (a basis file from ``pfv-onnx fit`` or a :class:`~pfv_onnx.core.FittedBasis` fitted on
    this model) the model also outputs the PFV picture under that basis (:mod:`pfv_onnx.analyses.in_graph`),
    ``(B, 3, H0, W0)`` float32 in ``[0, 1]``, or ``(B, H0, W0, 3)`` uint8 with ``uint8``: any ONNX runtime
    then gives the picture of an image in the one forward pass, with the same colours as
    :meth:`pfv_onnx.PFV.transform`. The basis must have been fitted on this model (its weights, taps,
    preset, input size and resize mode, which are taken from a basis file when not given); its weighting
    decides which taps are kept. The model given must be the original, not one tapped already.
    """
    src = bundled.resolve_model(src) if isinstance(src, (str, Path)) else src
    if basis is not None and statistics:
        raise OptionError("statistics", "are for colours relative to the batch: a model exported with {} draws its own picture", mentions=["basis"])
    if basis is None:
        if uint8:
            raise OptionError("uint8", "is the picture's type: give {} too", mentions=["basis"])
        tapped = tap_model(src, layers, final, keep_logits, activation_in_graph=True, size=size, statistics=statistics)
        save_model(tapped.model, dst, tapped, preset, labels)
        return tapped.outputs
    if read_tapped_outputs(load_model(src)) is not None:
        raise ModelError("this model was tapped already: export the original model with the basis")
    if not isinstance(basis, FittedBasis):
        preset, size, resize = _as_fitted(basis, preset, size, resize)
    # Tapped for the CPU whatever this machine has: the file is the same for every runtime, without the
    # outputs only an accelerator's run of PFV reads (A^b, F_N's statistics).
    options = Options(layers=tuple(layers) if layers else None, final=final, keep_logits=keep_logits, size=size, preset=preset,
                      resize=resize or "crop", providers=("CPU",), activation_in_graph=False, statistics_in_graph=False)
    pfv = PFV(src, options, basis=basis, labels=labels)
    assert pfv.basis is not None
    featurizer = pfv.featurizer
    tapped = featurizer.tapped
    model = add_picture(tapped.model, tapped.outputs, pfv.basis, featurizer.blank, featurizer.size, uint8, options.resize)
    # The preset that coloured the basis is the one the picture needs: it goes into the metadata.
    save_model(model, dst, tapped, featurizer.preset.name, labels)
    outputs = read_tapped_outputs(model)
    assert outputs is not None
    return outputs


def _as_fitted(
    basis: str | Path, preset: str | None, size: tuple[int, int] | None, resize: str | None
) -> tuple[str | None, tuple[int, int] | None, str | None]:
    """The preset, input size and resize mode the images of a basis file were made with, where not given."""
    header = load_basis(basis)[1]
    preset = preset or header.get("preset")
    size = size or (tuple(header["size"]) if isinstance(header.get("size"), list) else None)
    return preset, size, resize or header.get("resize")
