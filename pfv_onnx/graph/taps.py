"""The tap rule: which tensors PFV reads, generalised from the reference (VGG16's max-pool inputs).

A tap is the input tensor of an operator that reduces spatial size: MaxPool, AveragePool, LpPool, a strided
Conv, global pooling (GlobalAveragePool / GlobalMaxPool / GlobalLpPool, or ReduceMean / ReduceMax over both
spatial axes). Shapes decide "reduces": a strided op that gives fewer pixels (so stride-1 pools with
padding, and stride-1 convolutions that only trim a border, do not count), or pooling to a single pixel
(global pooling, or an AveragePool whose kernel covers the map). Tensors computed from the image by no
learned layer (the image input, or a Transpose / normalisation of it) are never taps.

The input of the last reducing op in graph order is the final layer ``F_N`` that the PCA decomposes: the
tensor entering the head's pooling. Every other resolution gives one earlier tap, feeding the activation
map ``A^b``: the first tensor produced at that resolution, so a ResNet stage contributes its output (which
feeds the strided shortcut) rather than a bottleneck's inner tensor. Taps stay in graph order. VGG gives
its first four pool inputs plus pool5's input as ``F_N``; ResNet, MobileNet and EfficientNet one tap per
stage plus the tensor entering global average pooling.

ONNX Conv and Pool inputs are NCHW by the standard, so a tap's channel axis is 1. A ReduceMean over axes
``[1, 2]`` of a ``Transpose(perm=[0, 2, 3, 1])`` output (a channels-last global pool) taps the NCHW tensor
before the Transpose.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import LayerError, ModelError
from .constants import attribute, constant_array, constant_tensors
from .shapes import TensorInfo

POOLS = {"MaxPool", "AveragePool", "LpPool"}
GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}
SPATIAL_REDUCES = {"ReduceMean", "ReduceMax"}
# Pure re-layouts before a reducing op, looked through to the tensor that enters them.
RELAYOUTS = {"Pad", "Identity"}
# What a squeeze-and-excitation gate is made of, between its pooling and the product with the pooled tensor.
GATE_OPS = {
    "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Relu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip", "Tanh",
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast", "QuantizeLinear", "DequantizeLinear",
}
GATE_DEPTH = 32
# Ops with weights: a tensor downstream of one of them is a feature, not (a function of) the image.
LEARNED = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"}


@dataclass(frozen=True)
class Tap:
    """One tapped tensor: its name, ``(C, h, w)`` and element type (``onnx.TensorProto`` enum)."""

    name: str
    channels: int
    height: int
    width: int
    elem_type: int


@dataclass(frozen=True)
class TapPlan:
    """The taps of one model: ``layers`` feed ``A^b`` (graph order), ``final`` is ``F_N``."""

    layers: tuple[Tap, ...]
    final: Tap

    @property
    def layer_names(self) -> list[str]:
        return [tap.name for tap in self.layers]


def _reduce_axes(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> list[int] | None:
    axes = attribute(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1] in constants:
        axes = constant_array(constants[node.input[1]]).tolist()
    return None if axes is None else sorted(int(a) % 4 for a in axes)


@dataclass(frozen=True)
class _Candidate:
    """An op that may reduce spatial size: ``tapped`` is the tensor PFV would read, ``reduced`` the op's
    output; ``strided`` marks Conv and pools with a stride above 1 (global pooling is not strided)."""

    index: int
    tapped: str
    reduced: str
    strided: bool


def _candidates(model: onnx.ModelProto) -> list[_Candidate]:
    """Every strided Conv, every pool and every global pooling of the graph, in graph order; each reads the
    tensor that enters the pure re-layouts before it (:func:`_entering`). A global pooling that only
    rescales the tensor it pooled (squeeze-and-excitation) is left out: it does not reduce the map."""
    constants = constant_tensors(model)
    producer = {out: node for node in model.graph.node for out in node.output}
    consumers = consumers_of(model)
    found = []
    for index, node in enumerate(model.graph.node):
        if not node.input or not node.output:
            continue
        strided = max(attribute(node, "strides") or [1]) > 1
        tapped = _entering(node.input[0], producer)
        if node.op_type == "Conv":
            if strided:  # a stride-1 convolution without padding trims a border; it does not pool
                found.append(_Candidate(index, tapped, node.output[0], True))
        elif node.op_type in POOLS:
            found.append(_Candidate(index, tapped, node.output[0], strided))
        elif node.op_type in GLOBAL_POOLS or node.op_type in SPATIAL_REDUCES:
            axes = _reduce_axes(node, constants) if node.op_type in SPATIAL_REDUCES else [2, 3]
            before = producer.get(node.input[0])
            if axes == [1, 2] and before is not None and before.op_type == "Transpose" and attribute(before, "perm") == [0, 2, 3, 1]:
                tapped = before.input[0]  # a channels-last global pool of an NCHW tensor
            elif axes != [2, 3]:
                continue
            if not _only_rescales(node, consumers):
                found.append(_Candidate(index, tapped, node.output[0], False))
    return found


def _entering(name: str, producer: dict[str, onnx.NodeProto]) -> str:
    """The tensor that enters the pure re-layouts (Pad, Identity) that make ``name``: an explicit Pad before a
    strided convolution (Keras's ZeroPadding2D, a blur pool's padding) is looked through, so the tap is the
    stage's own tensor at its own resolution, and the Pad keeps one reader (onnxruntime folds it into the
    convolution)."""
    node = producer.get(name)
    while node is not None and node.op_type in RELAYOUTS and node.input and node.input[0]:
        name = node.input[0]
        node = producer.get(name)
    return name


def consumers_of(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    """The nodes of the main graph that read each tensor, by the tensor's name, in graph order."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    return consumers


def _only_rescales(pool: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]]) -> bool:
    """Whether a global pooling's result only gates the tensor it pooled, ``x * gate(pool(x))``
    (squeeze-and-excitation), through a few small operators."""
    pooled = pool.input[0]
    frontier, seen = [pool.output[0]], set()
    while frontier and len(seen) < GATE_DEPTH:
        tensor = frontier.pop()
        for node in consumers.get(tensor, []):
            if node.op_type in ("Mul", "Div") and pooled in node.input:
                return True
            if node.op_type in GATE_OPS and node.output and node.output[0] not in seen:
                seen.add(node.output[0])
                frontier.append(node.output[0])
    return False


def shape_candidates(model: onnx.ModelProto) -> list[str]:
    """Tensors whose shapes the tap rule needs (inputs and outputs of possibly reducing ops)."""
    names: list[str] = []
    for candidate in _candidates(model):
        names += [candidate.tapped, candidate.reduced]
    return list(dict.fromkeys(names))


def learned_tensors(model: onnx.ModelProto) -> set[str]:
    """The tensors downstream of a learned op (:data:`LEARNED`): features, not (functions of) the image."""
    learned: set[str] = set()
    for node in model.graph.node:
        if node.op_type in LEARNED or any(name in learned for name in node.input):
            learned.update(node.output)
    return learned


def _tap(name: str, info: TensorInfo | None) -> Tap | None:
    if info is None or info.shape is None or len(info.shape) != 4 or not info.known:
        return None
    _, channels, height, width = info.shape
    return Tap(name, channels, height, width, info.elem_type)


def _pixels(info: TensorInfo | None) -> int | None:
    """Pixels per channel of a ``(B, C, h, w)`` tensor, 1 for a pooled ``(B, C)``, ``None`` when unknown."""
    if info is None or info.shape is None or len(info.shape) < 2:
        return None
    spatial = info.shape[2:]
    if any(d is None for d in spatial):
        return None
    return int(np.prod(spatial, dtype=np.int64)) if spatial else 1


def find_taps(
    model: onnx.ModelProto,
    tensors: dict[str, TensorInfo],
    layers: list[str] | None = None,
    final: str | None = None,
) -> TapPlan:
    """Choose the taps of ``model`` by the rule above, or check the ones the user named.

    Args:
        tensors: type and shape of the tensors :func:`shape_candidates` lists (and of any named layer).
        layers: tensor names feeding ``A^b``, in any order (graph order is restored). With ``final``
            unset, the last of them becomes ``F_N``.
        final: tensor name of ``F_N``. With ``layers`` unset, the automatic taps before it feed ``A^b``.

    Raises:
        LayerError: a named tensor does not exist, is not a ``(B, C, h, w)`` feature map, or comes after
            ``final``.
        ModelError: the rule finds no layer that reduces spatial size.
    """
    order = {out: i for i, node in enumerate(model.graph.node) for out in node.output}
    if layers is None:
        earlier, last = _automatic_taps(model, tensors, order)
        if final is None:
            if last is None:
                raise ModelError(
                    "no layer to tap: the model has no pooling or strided convolution on a feature map "
                    "(name the layers with layers=/final=)", flags={"layers=/final=": "--layers/--final"}
                )
            return TapPlan(tuple(earlier), last)
        final_tap = _named_tap(model, tensors, final, order)
        candidates = earlier + ([last] if last is not None else [])
        return TapPlan(tuple(t for t in candidates if order[t.name] < order[final_tap.name]), final_tap)

    named = [_named_tap(model, tensors, name, order) for name in dict.fromkeys(layers)]
    named.sort(key=lambda tap: order[tap.name])
    if final is None:
        if not named:
            raise LayerError("layers= needs at least one tensor name", flags={"layers=": "--layers"})
        return TapPlan(tuple(named[:-1]), named[-1])
    final_tap = _named_tap(model, tensors, final, order)
    later = [t.name for t in named if order[t.name] > order[final_tap.name]]
    if later:
        raise LayerError(f"layer {later[0]!r} comes after the final layer {final!r}; layers feeding A^b must come before it")
    return TapPlan(tuple(t for t in named if t.name != final_tap.name), final_tap)


def reduces_spatially(model: onnx.ModelProto, tensors: dict[str, TensorInfo]) -> bool:
    """Whether the tap rule finds an ``F_N`` in ``model`` (a transformer has none: :mod:`pfv_onnx.graph.tokens`)."""
    order = {out: i for i, node in enumerate(model.graph.node) for out in node.output}
    return _automatic_taps(model, tensors, order)[1] is not None


def _automatic_taps(model: onnx.ModelProto, tensors: dict[str, TensorInfo], order: dict[str, int]) -> tuple[list[Tap], Tap | None]:
    """The rule: ``F_N`` is the input of the last reducing op; one earlier tap per other resolution."""
    learned = learned_tensors(model)
    reducing: list[tuple[_Candidate, Tap]] = []
    for candidate in _candidates(model):
        if candidate.tapped not in learned:
            continue
        tap = _tap(candidate.tapped, tensors.get(candidate.tapped))
        out_pixels = _pixels(tensors.get(candidate.reduced))
        if tap is None or out_pixels is None:
            continue
        in_pixels = tap.height * tap.width
        # Strided ops reduce when they give fewer pixels; the others only when they pool to one pixel.
        if (candidate.strided and out_pixels < in_pixels) or (out_pixels == 1 < in_pixels):
            reducing.append((candidate, tap))
    if not reducing:
        return [], None
    # The last reducing op reads F_N (the tensor entering the head's pooling). Taking the first tensor per
    # resolution for F_N would pick, in networks with squeeze-and-excitation, the first SE block's input.
    final = max(reducing, key=lambda item: item[0].index)[1]
    by_resolution: dict[tuple[int, int], Tap] = {}
    for _, tap in reducing:
        key = (tap.height, tap.width)
        if key == (final.height, final.width) or order[tap.name] >= order[final.name]:
            continue
        if key not in by_resolution or order[tap.name] < order[by_resolution[key].name]:
            by_resolution[key] = tap
    return sorted(by_resolution.values(), key=lambda tap: order[tap.name]), final


def _named_tap(model: onnx.ModelProto, tensors: dict[str, TensorInfo], name: str, order: dict[str, int]) -> Tap:
    if name not in order:
        if any(value.name == name for value in model.graph.input):
            raise LayerError(f"{name!r} is the model's input, not a feature map")
        if any(init.name == name for init in model.graph.initializer):
            raise LayerError(f"{name!r} is a weight (an initializer), not a feature map")
        close = difflib.get_close_matches(name, list(order), n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise LayerError(f"no tensor named {name!r} in the model{hint}")
    tap = _tap(name, tensors.get(name))
    if tap is None:
        info = tensors.get(name)
        shape = "unknown" if info is None or info.shape is None else list(info.shape)
        raise LayerError(f"tensor {name!r} is not a (batch, channels, height, width) feature map (shape {shape})")
    return tap
