"""``pfv_onnx.export``: a tapped copy of a model, or, with a fitted basis, one that outputs the PFV picture too."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx

from .analyses.basis import header_inputs, load_basis
from .core.fitted import FittedBasis
from .images import bundled
from .errors import ModelError
from .graph import TappedOutputs, load_model, read_tapped_outputs
from .analyses.in_graph import add_picture
from .options import OptionError, Options
from .pfv import PFV, options_given
from .runtime.tapping import save_model, tap_model
from .util.files import check_output_file


def export(
    src: str | Path | bytes | onnx.ModelProto,
    dst: str | Path,
    options: Options | None = None,
    *,
    basis: str | Path | FittedBasis | None = None,
    labels: str | Path | Sequence[str] | None = None,
    uint8: bool = False,
    statistics: bool = False,
    overwrite: bool = False,
    **option_values: Any,
) -> TappedOutputs:
    """Write the tapped model of ``src`` (a path, a bundled model's name, bytes or a ``ModelProto``, not one
    tapped already) to ``dst``, refused when it exists unless ``overwrite``; return what it outputs. The file
    is written whole or not at all, with its weights in ``DST.data`` when the model's were in a file of
    their own (:func:`pfv_onnx.runtime.tapping.save_model`).

    ``options`` (or its fields as keywords) as :class:`~pfv_onnx.PFV` takes them: ``layers``, ``final``,
    ``keep_logits`` and ``size`` shape the graph; ``preset`` and ``labels`` (or ``labels=``, a list of class
    names) go into its metadata (:mod:`pfv_onnx.images.labels`). The file outputs ``F_N``, the channel-sum
    map of every earlier tap, ``A^b`` ``(B, 1, H0, W0)`` (when the input size is fixed, or ``size`` fixes
    it), the model's outputs with ``keep_logits``, and with ``statistics`` what colours relative to the batch
    need of ``F_N`` on an accelerator (:func:`pfv_onnx.graph.add_pfv_outputs`).

    With ``basis`` (a basis file or a :class:`~pfv_onnx.core.FittedBasis` fitted on this model, whose
    preset, size and resize mode are the default) it also outputs the PFV picture, ``(B, 3, H0, W0)``
    float32 in ``[0, 1]`` or ``(B, H0, W0, 3)`` uint8 with ``uint8``, as :meth:`pfv_onnx.PFV.transform`
    colours it (:mod:`pfv_onnx.analyses.in_graph`).

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> outputs = export("mobilenet_v2", f"{folder}/tapped.onnx", keep_logits=False)
    >>> outputs.final, outputs.maps, outputs.original
    ('/features/features.18/features.18.2/Clip_output_0', ('pfv_map_0', ..., 'pfv_map_3'), ())
    >>> import onnxruntime
    >>> pfv = PFV().fit(bundled.sample_images())
    >>> export("mobilenet_v2", f"{folder}/picture.onnx", basis=pfv.basis, uint8=True).picture
    'pfv_rgb'
    >>> session = onnxruntime.InferenceSession(f"{folder}/picture.onnx")
    >>> inputs = pfv.featurizer.load(bundled.sample_images()[:2]).inputs   # (2, 3, 224, 224) float32
    >>> picture, = session.run(["pfv_rgb"], {session.get_inputs()[0].name: inputs})
    >>> picture.shape, picture.dtype
    ((2, 224, 224, 3), dtype('uint8'))
    """
    options, given = options_given(options, option_values)
    labels = labels if labels is not None else options.labels
    dst = check_output_file(dst, overwrite)
    src = bundled.resolve_model(src) if isinstance(src, (str, Path)) else src
    if basis is not None:
        if statistics:
            raise OptionError("statistics", "are for colours relative to the batch: a model exported with {} draws its own picture", mentions=["basis"])
        return _export_picture(src, dst, options, given, basis, labels, uint8)
    if uint8:
        raise OptionError("uint8", "is the picture's type: give {} too", mentions=["basis"])
    tapped = tap_model(src, options.layers, options.final, options.keep_logits, activation_in_graph=True, size=options.size, statistics=statistics, grid=options.grid)
    if statistics and tapped.outputs.tokens:
        raise OptionError("statistics", "are not computed in the graph for a transformer's token grid: its tokens are weighted by their length, in NumPy")
    save_model(tapped.model, dst, tapped, options.preset, labels)
    return tapped.outputs


def _export_picture(
    src: Path | bytes | onnx.ModelProto, dst: Path, options: Options, given: set[str],
    basis: str | Path | FittedBasis, labels: str | Sequence[str] | None, uint8: bool,
) -> TappedOutputs:
    """:func:`export` with ``basis``: the model outputs the PFV picture too. ``given``: the options the caller
    set, which a basis file's preset, size and resize mode do not replace."""
    if read_tapped_outputs(load_model(src)) is not None:
        raise ModelError("this model was tapped already: export the original model with the basis")
    if not isinstance(basis, FittedBasis):  # how the basis's images were made, unless given
        taken = header_inputs(load_basis(basis)[1])
        options = options.replace(**{name: value for name, value in taken.items() if name not in given and value is not None})
    # Tapped for the CPU whatever this machine has: the file is the same for every runtime, without the
    # outputs only an accelerator's run of PFV reads (A^b, F_N's statistics).
    options = options.replace(providers=("CPU",), activation_in_graph=False, statistics_in_graph=False)
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
