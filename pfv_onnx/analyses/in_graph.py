"""The fitted PFV as ONNX operators: a tapped model that also outputs the picture, on any ONNX runtime.

With a fitted basis every step of :func:`pfv_onnx.core.transform` is fixed, so the whole method fits in
the graph, after the taps:

1. centring and projection of ``F_N`` on the basis's first three components (a ``Sub`` and a 1x1 ``Conv``,
   the basis's prescale folded into the weights);
2. the weighting's map at the input size from the tapped channel sums (:mod:`pfv_onnx.core.activation`:
   ``focus`` subtracts the blank image's response, a constant here), or the hierarchical weighting layer
   by layer;
3. bilinear upsampling of the components (two ``MatMul`` with fixed matrices) and the product;
4. the basis's normalisation and clip to ``[0, 1]``; a missing component (fewer than three) stays 0.

The result is output ``pfv_rgb``, ``(B, 3, H0, W0)`` float32 in ``[0, 1]``, or with ``uint8``
``(B, H0, W0, 3)`` uint8 rounded as :func:`pfv_onnx.render.images.to_uint8` rounds. Only operators of
opset 9 are added, so any graph of opset 9 or later takes it. The model's own outputs and the taps stay as
they were; the metadata key :data:`PICTURE_KEY` describes the picture, and :data:`OUTPUTS_KEY` says what
every output is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..core.activation import FOCUS_FLOOR, BlankResponse
from ..core.fitted import FittedBasis
from ..core.normalise import FLAT_VALUE
from ..core.weighting import RGB
from ..errors import ModelError, first_line
from ..options import RESIZE_MODES, WEIGHTINGS, field_type_problem
from ..graph import Tap, TappedOutputs, read_tapped_outputs
from ..graph.builder import GraphBuilder
from ..graph.model_io import check_rewritten, set_metadata
from ..graph.rewrite import METADATA_KEY, channel_sum, token_length
from ..images.preprocess import MAX_INPUT_PIXELS
from .basis.checks import check_channels, check_fitted, check_layers

PICTURE = "pfv_rgb"
PICTURE_KEY = "pfv_onnx_picture"
OUTPUTS_KEY = "pfv_onnx_outputs"
LAYOUTS = {"NCHW": "float32", "NHWC": "uint8"}
# Each layout's picture, in words.
SHAPES = {"NCHW": "(B, 3, H, W) float32 in [0, 1]", "NHWC": "(B, H, W, 3) uint8"}
# The fields of the metadata record and the types they must have (the name is in the tapped outputs' record).
RECORD_TYPES = {"layout": str, "basis": str, "weighting": str, "hierarchical": bool, "size": list, "neutral": float, "resize": str}


@dataclass(frozen=True)
class PictureOutput:
    """The picture output of a model exported with a basis: its ``name``; ``layout`` ``NCHW`` (float32 in
    ``[0, 1]``) or ``NHWC`` (uint8); the ``basis`` fingerprint and the method it fixes; the input ``size``;
    the ``neutral`` grey (in ``[0, 1]``) where the weighting is 0; ``resize``, how photos become the input
    (:data:`pfv_onnx.options.RESIZE_MODES`), as for the basis."""

    name: str
    layout: str
    basis: str
    weighting: str
    hierarchical: bool
    size: tuple[int, int]
    neutral: float
    resize: str

    @property
    def dtype(self) -> str:
        return LAYOUTS[self.layout]

    def describe(self) -> str:
        """The picture's shape, type and range, in words."""
        return SHAPES[self.layout]

    def to_json(self) -> str:
        """The metadata record (the name is in the tapped outputs' record)."""
        return json.dumps({key: value for key, value in asdict(self).items() if key != "name"})


def read_picture_output(model: onnx.ModelProto) -> PictureOutput | None:
    """The :class:`PictureOutput` a model's metadata records, ``None`` when it has none; refused with one
    line when the record is damaged, or its picture is not one of the model's outputs or not of the type and
    shape the record says (the web page reads the output's values as the record says they are)."""
    entry = next((p.value for p in model.metadata_props if p.key == PICTURE_KEY), None)
    if entry is None:
        return None
    tapped = read_tapped_outputs(model)
    if tapped is None or tapped.picture is None:
        raise ModelError(f"the model's {PICTURE_KEY} metadata describes a picture, but the model outputs none")
    try:
        data = json.loads(entry)
        problem = field_type_problem(data, RECORD_TYPES) if isinstance(data, dict) else "not a JSON object"
        if problem:
            raise ValueError(problem)
        size = data["size"]
        if len(size) != 2 or not all(isinstance(d, int) and not isinstance(d, bool) for d in size):
            raise ValueError(f"size {size}")
        picture = PictureOutput(tapped.picture, data["layout"], data["basis"], data["weighting"], data["hierarchical"],
                                (size[0], size[1]), float(data["neutral"]), data["resize"])
        if picture.layout not in LAYOUTS or picture.resize not in RESIZE_MODES or picture.weighting not in WEIGHTINGS:
            raise ValueError(f"layout {picture.layout!r}, resize {picture.resize!r}, weighting {picture.weighting!r}")
        if not (0 < size[0] and 0 < size[1] and size[0] * size[1] <= MAX_INPUT_PIXELS and 0.0 <= picture.neutral <= 1.0):
            raise ValueError(f"size {size}, neutral {picture.neutral}")
    except (ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:  # RecursionError: JSON nested too deeply
        raise ModelError(f"the model's {PICTURE_KEY} metadata is unreadable ({first_line(exc)})") from None
    _check_declared(model, picture)
    return picture


def _check_declared(model: onnx.ModelProto, picture: PictureOutput) -> None:
    """Refuse, with one line, a picture record that says another type or shape than the graph declares for
    the picture output: float32 ``(B, 3, H, W)`` for ``NCHW``, uint8 ``(B, H, W, 3)`` for ``NHWC``, with the
    record's ``(H, W)``."""
    tensor = next(o for o in model.graph.output if o.name == picture.name).type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    height, width = picture.size
    wanted = [RGB, height, width] if picture.layout == "NCHW" else [height, width, RGB]
    if tensor.elem_type != helper.np_dtype_to_tensor_dtype(np.dtype(picture.dtype)) or len(dims) != 4 or dims[1:] != wanted:
        kind = dict((v, k.lower()) for k, v in TensorProto.DataType.items()).get(tensor.elem_type, f"type {tensor.elem_type}")
        declared = f"{kind} ({', '.join('?' if d is None else str(d) for d in dims)})"
        raise ModelError(f"the model's {PICTURE_KEY} metadata says its picture is {picture.describe()} at {height} x {width}, "
                         f"but output {picture.name!r} is {declared}")


def add_picture(
    model: onnx.ModelProto,
    outputs: TappedOutputs,
    basis: FittedBasis,
    blank: BlankResponse,
    size: tuple[int, int],
    uint8: bool = False,
    resize: str = "crop",
) -> onnx.ModelProto:
    """A copy of the tapped ``model`` that also outputs the PFV picture under ``basis`` (module docstring).

    Args:
        outputs: what the tapped model outputs (its ``maps`` are the taps the basis's weighting reads).
        basis: a fitted basis with its normalisation.
        blank: the channel sums of a featureless image (the ``focus`` weighting subtracts them); their shapes
            are those of ``F_N`` and of the maps.
        size: ``(H0, W0)``, the input size.
        uint8: output ``(B, H0, W0, 3)`` uint8 instead of ``(B, 3, H0, W0)`` float32.
        resize: how photos were resized to the input for the basis, recorded for the runtimes that prepare
            photos themselves (the web page).
    """
    final_type, batch, channels = _declared(model, outputs.final)
    _check(model, outputs, basis, blank, channels)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    build = GraphBuilder(out)
    final = build.as_float(outputs.final, final_type, "pfv/picture/final_float")
    scores = _project(build, final, basis)
    shapes = [m.shape for m in blank.maps]
    sources, source_shapes = _sources(build, basis, final, outputs.maps, shapes, blank)
    if basis.hierarchical:
        weighted = _by_layers(build, scores, _hw(blank.final), sources, source_shapes, basis.layer_peaks, size)
    else:
        if basis.weighting == "paper" and outputs.activation is not None:
            weight = outputs.activation  # A^b, already in the graph
        else:
            weight = _weighting_map(build, basis, sources, source_shapes, size)
        weighted = build.node("Mul", [build.resize(scores, _hw(blank.final), size, "pfv/picture/up"), weight], "pfv/picture/weighted")
    rgb = _normalised(build, weighted, basis)
    picture = _as_uint8(build, rgb) if uint8 else build.node("Identity", [rgb], PICTURE)
    shape = [batch, *size, RGB] if uint8 else [batch, RGB, *size]
    out.graph.output.append(helper.make_tensor_value_info(picture, TensorProto.UINT8 if uint8 else TensorProto.FLOAT, shape))
    record = PictureOutput(picture, "NHWC" if uint8 else "NCHW", basis.fingerprint(), basis.weighting, basis.hierarchical, tuple(size),
                           basis.scaling.neutral, resize)
    set_metadata(out, {PICTURE_KEY: record.to_json(), OUTPUTS_KEY: json.dumps(_describe(out, outputs, record)),
                       METADATA_KEY: replace(outputs, picture=picture).to_json()})
    check_rewritten(out, "the model with the picture")
    return out


def _by_layers(build: GraphBuilder, scores: str, final_hw, sources: list[str], shapes, peaks, size: tuple[int, int]) -> str:
    """The hierarchical weighting (:func:`pfv_onnx.core.weighting.by_layers`): the components weighted by each
    source divided by its peak, from the last earlier layer to the first, then upsampled to ``size``."""
    weighted, at = scores, final_hw
    for source, shape, peak in zip(reversed(sources), reversed(shapes), reversed(peaks)):
        layer = build.node("Mul", [source, build.constant(np.float32(1.0 / peak), "pfv/picture/peak")], "pfv/picture/layer")
        weighted = build.node("Mul", [build.resize(weighted, at, shape, "pfv/picture/up"), layer], "pfv/picture/weighted")
        at = shape
    return build.resize(weighted, at, size, "pfv/picture/up")


def _check(model: onnx.ModelProto, outputs: TappedOutputs, basis: FittedBasis, blank: BlankResponse, channels: int | None) -> None:
    """Refuse, with one line, a basis that does not fit the tapped model (``F_N`` of ``channels``, when
    declared: :mod:`pfv_onnx.analyses.basis.checks`), and a graph older than opset 9."""
    check_fitted(basis)
    if outputs.picture is not None:
        raise ModelError("the model outputs a PFV picture already: export the original model")
    if len(blank.maps) != len(outputs.maps):
        raise ModelError(f"the model outputs {len(outputs.maps)} maps, the blank response has {len(blank.maps)}")
    check_layers(basis, len(outputs.maps))
    if channels is not None:
        check_channels(basis, channels, outputs.final)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 9:
        raise ModelError(f"the picture needs operators of opset 9 or later; the model is opset {opset}")


def _declared(model: onnx.ModelProto, name: str) -> tuple[int, int | str, int | None]:
    """Output ``name``'s element type, its batch dimension (a number or a symbolic name) and its channels
    (``None`` when not declared), as the graph declares them."""
    tensor = next(o for o in model.graph.output if o.name == name).type.tensor_type
    dims = tensor.shape.dim
    batch = (dims[0].dim_value if dims[0].HasField("dim_value") else dims[0].dim_param or "batch") if dims else "batch"
    channels = dims[1].dim_value if len(dims) == 4 and dims[1].HasField("dim_value") else None
    return tensor.elem_type, batch, channels


def _hw(array: np.ndarray) -> tuple[int, int]:
    return int(array.shape[0]), int(array.shape[1])


def _project(build: GraphBuilder, final: str, basis: FittedBasis) -> str:
    """``(B, 3, h, w)``: the first three components of each pixel, times the prescale (0 past ``k``)."""
    mean = basis.pca.mean.astype(np.float32).reshape(1, -1, 1, 1)
    components = basis.pca.components[:RGB]
    weights = np.zeros((RGB, components.shape[1], 1, 1), np.float32)
    weights[: len(components), :, 0, 0] = components * basis.prescale
    centred = build.node("Sub", [final, build.constant(mean, "pfv/picture/mean")], "pfv/picture/centred")
    return build.node("Conv", [centred, build.constant(weights, "pfv/picture/components")], "pfv/picture/scores", kernel_shape=[1, 1])


def _sources(build: GraphBuilder, basis: FittedBasis, final: str, maps, shapes, blank: BlankResponse) -> tuple[list[str], list[tuple[int, int]]]:
    """The weighting's ``(B, 1, h, w)`` sources, as :func:`pfv_onnx.core.activation.weighting_sources` makes
    them, and their ``(h, w)``."""
    if basis.weighting == "paper" and maps:
        return list(maps), [tuple(s) for s in shapes]
    height, width = _hw(blank.final)
    channels = basis.pca.mean.shape[0]
    if blank.tokens is not None:  # a token grid: each token's length (from the blank image's token, for focus)
        if basis.weighting == "focus":
            final = build.node("Sub", [final, build.constant(blank.tokens.astype(np.float32)[None], "pfv/picture/blank_tokens")], "pfv/picture/from_blank")
        response = token_length(build, Tap(final, channels, height, width, TensorProto.FLOAT), "pfv/picture/length")
    else:
        response = channel_sum(build, Tap(final, channels, height, width, TensorProto.FLOAT), "pfv/picture/final_sum")
    if basis.weighting != "focus":
        return [response], [(height, width)]

    def beyond(name: str, response: np.ndarray) -> str:
        floor = build.constant(response.astype(np.float32)[None, None], "pfv/picture/blank")
        return build.node("Relu", [build.node("Sub", [name, floor], "pfv/picture/difference")], "pfv/picture/beyond_blank")

    # A token grid's response is its distance from the blank image's tokens already.
    sources, source_shapes = [response if blank.tokens is not None else beyond(response, blank.final)], [(height, width)]
    if maps:
        sources.append(beyond(maps[-1], blank.maps[-1]))
        source_shapes.append(tuple(shapes[-1]))
    return sources, source_shapes


def _weighting_map(build: GraphBuilder, basis: FittedBasis, sources: list[str], shapes, size: tuple[int, int]) -> str:
    """``W^b`` ``(B, 1, H0, W0)``, as :func:`pfv_onnx.core.activation.weighting_map` computes it with the
    basis's divisors."""
    upsampled = [build.resize(name, shape, size, "pfv/picture/source_up") for name, shape in zip(sources, shapes)]
    if basis.weighting == "paper":
        return build.node("Sum", upsampled, "pfv/picture/activation")
    if basis.weighting != "focus":
        return upsampled[0]
    deep = build.node("Mul", [upsampled[0], build.constant(np.float32(1.0 / basis.layer_peaks[0]), "pfv/picture/peak")], "pfv/picture/deep")
    if len(upsampled) > 1:
        fine = build.node("Mul", [upsampled[1], build.constant(np.float32(1.0 / basis.layer_peaks[1]), "pfv/picture/peak")], "pfv/picture/fine")
        fine = build.node("Add", [fine, build.constant(np.float32(FOCUS_FLOOR), "pfv/picture/floor")], "pfv/picture/fine_floor")
        deep = build.node("Mul", [deep, fine], "pfv/picture/focus_product")
    focus = build.node("Sqrt", [deep], "pfv/picture/focus")
    # An image the network responds to nowhere beyond the blank image is left unweighted (W = 1), as in the core.
    peak = build.reduce("ReduceMax", sources[0], axes=[1, 2, 3], wanted="pfv/picture/deep_max")
    responds = build.node("Greater", [peak, build.constant(np.float32(0.0), "pfv/picture/zero")], "pfv/picture/responds")
    return build.node("Where", [responds, focus, build.constant(np.float32(1.0), "pfv/picture/one")], "pfv/picture/activation")


def _normalised(build: GraphBuilder, weighted: str, basis: FittedBasis) -> str:
    """:func:`pfv_onnx.core.normalise.apply_scaling` with the basis's normalisation, in the same float32
    arithmetic; channels past the basis's components are 0."""
    scaling = basis.scaling
    assert scaling is not None
    lo = np.float32(scaling.lo)
    span = np.float32(scaling.hi) - lo
    if span > 0:
        shifted = build.node("Sub", [weighted, build.constant(lo, "pfv/picture/lo")], "pfv/picture/shifted")
        scaled = build.node("Div", [shifted, build.constant(np.float32(span), "pfv/picture/span")], "pfv/picture/scaled")
        # Min and Max, not Clip: Clip's bounds moved from attributes to inputs in opset 11.
        upper = build.node("Min", [scaled, build.constant(np.float32(1.0), "pfv/picture/one")], "pfv/picture/upper")
        rgb = build.node("Max", [upper, build.constant(np.float32(0.0), "pfv/picture/zero")], "pfv/picture/clipped")
    else:  # a basis without contrast: mid grey
        flat = build.node("Mul", [weighted, build.constant(np.float32(0.0), "pfv/picture/zero")], "pfv/picture/flat")
        rgb = build.node("Add", [flat, build.constant(np.float32(FLAT_VALUE), "pfv/picture/grey")], "pfv/picture/clipped")
    shown = min(basis.pca.n_components, RGB)
    if shown < RGB:
        mask = np.zeros((1, RGB, 1, 1), np.float32)
        mask[0, :shown] = 1.0
        rgb = build.node("Mul", [rgb, build.constant(mask, "pfv/picture/shown")], "pfv/picture/masked")
    return rgb


def _as_uint8(build: GraphBuilder, rgb: str) -> str:
    """``(B, 3, H, W)`` float32 in ``[0, 1]`` to ``(B, H, W, 3)`` uint8, ``floor(x * 255 + 0.5)``."""
    channels_last = build.node("Transpose", [rgb], "pfv/picture/channels_last", perm=[0, 2, 3, 1])
    levels = build.node("Mul", [channels_last, build.constant(np.float32(255.0), "pfv/picture/levels")], "pfv/picture/levels")
    rounded = build.node("Floor", [build.node("Add", [levels, build.constant(np.float32(0.5), "pfv/picture/half")], "pfv/picture/half_up")], "pfv/picture/rounded")
    return build.node("Cast", [rounded], PICTURE, to=TensorProto.UINT8)


def _describe(model: onnx.ModelProto, outputs: TappedOutputs, picture: PictureOutput) -> dict[str, str]:
    """A sentence for every output, also written into the outputs' doc strings."""
    fixed = f"basis {picture.basis}, {picture.weighting} weighting{' (hierarchical)' if picture.hierarchical else ''}"
    sentences = {name: "the model's own output, unchanged" for name in outputs.original}
    sentences[outputs.final] = "F_N, the final feature map PFV decomposes"
    sentences.update({name: f"the channel sum of tap {tap}" for tap, name in zip(outputs.taps, outputs.maps)})
    if outputs.activation:
        sentences[outputs.activation] = "A^b, the paper's total activation map at the input size"
    sentences[picture.name] = f"the PFV picture, {picture.describe()}: component 1, 2, 3 in red, green, blue ({fixed})"
    for value in model.graph.output:
        if value.name in sentences:
            value.doc_string = sentences[value.name]
    return sentences
