"""``pfv_onnx.export``: a tapped copy of a model, or, with a fitted basis, one that outputs the PFV picture too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import onnx

from .basis_file import load_basis
from .core.fitted import FittedBasis
from .graph import TappedOutputs, read_tapped_outputs
from .in_graph import add_picture
from .options import Options
from .pfv import PFV
from .tapping import export as export_tapped
from .tapping import save_model


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
) -> TappedOutputs:
    """Write the tapped model of ``src`` to ``dst`` (:func:`pfv_onnx.tapping.export`) and return what it
    outputs.

    With ``basis`` (a basis file from ``pfv-onnx fit`` or a :class:`~pfv_onnx.core.FittedBasis` fitted on
    this model) the model also outputs the PFV picture under that basis (:mod:`pfv_onnx.in_graph`),
    ``(B, 3, H0, W0)`` float32 in ``[0, 1]``, or ``(B, H0, W0, 3)`` uint8 with ``uint8``: any ONNX runtime
    then gives the picture of an image in the one forward pass, with the same colours as
    :meth:`pfv_onnx.PFV.transform`. The basis must have been fitted on this model (its weights, taps,
    preset and input size, which are taken from a basis file when not given); its weighting decides which
    taps are kept.
    """
    if basis is not None and statistics:
        raise ValueError("statistics are for colours relative to the batch: a model with a basis draws its own picture")
    if basis is None:
        if uint8:
            raise ValueError("uint8 is the picture's type: it needs a basis")
        return export_tapped(src, dst, layers, final, keep_logits, size, preset, labels, statistics)
    if not isinstance(basis, FittedBasis):  # the input size and preset the basis was fitted with, unless given
        header = load_basis(basis)[1]
        preset = preset or header.get("preset")
        size = size or (tuple(header["size"]) if isinstance(header.get("size"), list) else None)
    options = Options(layers=tuple(layers) if layers else None, final=final, keep_logits=keep_logits, size=size, preset=preset)
    pfv = PFV(src, options, basis=basis, labels=labels)
    assert pfv.basis is not None
    featurizer = pfv.featurizer
    tapped = featurizer.tapped
    model = add_picture(tapped.model, tapped.outputs, pfv.basis, featurizer.blank, featurizer.size, uint8)
    # The preset that coloured the basis is the one the picture needs: it goes into the metadata.
    save_model(model, dst, tapped, featurizer.preset.name, labels)
    outputs = read_tapped_outputs(model)
    assert outputs is not None
    return outputs
