"""The tap rule: which tensors PFV reads, generalised from the reference (VGG16's max-pool inputs).

A tap is the input tensor of an operator that reduces spatial size: MaxPool, AveragePool, LpPool, a strided
Conv, global pooling (GlobalAveragePool / GlobalMaxPool / GlobalLpPool, or ReduceMean / ReduceMax over both
spatial axes). Shapes decide "reduces": an op whose output has fewer pixels than its input, so stride-1
pools with padding are not taps. Tensors computed from the image by no learned layer (the image input, or
a Transpose / normalisation of it) are not taps either.

De-duplication keeps one tap per spatial resolution, the first produced in graph order: for a ResNet the
stage output that feeds the strided shortcut rather than the bottleneck's inner tensor, so each stage gives
one tap. Taps stay in graph order; the last one is the final layer ``F_N`` that the PCA decomposes, every
earlier one feeds the activation map ``A^b``. VGG gives the 4 earlier pool inputs plus pool5's input;
ResNet, MobileNet and EfficientNet one tap per stage plus the tensor entering global average pooling.

ONNX Conv and Pool inputs are NCHW by the standard, so a tap's channel axis is 1. A ReduceMean over axes
``[1, 2]`` of a ``Transpose(perm=[0, 2, 3, 1])`` output (a channels-last global pool) taps the NCHW tensor
before the Transpose.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import onnx
from onnx import numpy_helper

from ..errors import LayerError, ModelError
from .shapes import TensorInfo

POOLS = {"MaxPool", "AveragePool", "LpPool"}
GLOBAL_POOLS = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}
SPATIAL_REDUCES = {"ReduceMean", "ReduceMax"}
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
    def names(self) -> list[str]:
        return [tap.name for tap in self.layers]


def _attribute(node: onnx.NodeProto, name: str):
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return None


def _constants(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    found = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            value = _attribute(node, "value")
            if isinstance(value, onnx.TensorProto):
                found[node.output[0]] = value
    return found


def _reduce_axes(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> list[int] | None:
    axes = _attribute(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1] in constants:
        axes = numpy_helper.to_array(constants[node.input[1]]).tolist()
    return None if axes is None else sorted(int(a) % 4 for a in axes)


def _candidates(model: onnx.ModelProto) -> list[tuple[int, str, str]]:
    """``(node index, tapped tensor, reduced tensor)`` for every op that may reduce spatial size.

    The reduced tensor is the op's output, compared with the tapped tensor to decide "reduces".
    """
    constants = _constants(model)
    producer = {out: node for node in model.graph.node for out in node.output}
    found = []
    for index, node in enumerate(model.graph.node):
        if not node.input or not node.output:
            continue
        if node.op_type in POOLS or node.op_type in GLOBAL_POOLS or node.op_type == "Conv":
            found.append((index, node.input[0], node.output[0]))
        elif node.op_type in SPATIAL_REDUCES:
            axes = _reduce_axes(node, constants)
            if axes == [2, 3]:
                found.append((index, node.input[0], node.output[0]))
            elif axes == [1, 2]:
                before = producer.get(node.input[0])
                if before is not None and before.op_type == "Transpose" and _attribute(before, "perm") == [0, 2, 3, 1]:
                    found.append((index, before.input[0], node.output[0]))
    return found


def shape_candidates(model: onnx.ModelProto) -> list[str]:
    """Tensors whose shapes the tap rule needs (inputs and outputs of possibly reducing ops)."""
    names: list[str] = []
    for _, tapped, reduced in _candidates(model):
        names += [tapped, reduced]
    return list(dict.fromkeys(names))


def _learned_tensors(model: onnx.ModelProto) -> set[str]:
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
        LayerError: a named tensor does not exist or is not a ``(B, C, h, w)`` feature map.
        ModelError: the rule finds no layer that reduces spatial size.
    """
    order = {out: i for i, node in enumerate(model.graph.node) for out in node.output}
    if layers is None:
        automatic = _automatic_taps(model, tensors)
        if final is None:
            if not automatic:
                raise ModelError(
                    "no layer to tap: the model has no pooling or strided convolution on a feature map "
                    "(name the layers with --layers/--final)"
                )
            return TapPlan(tuple(automatic[:-1]), automatic[-1])
        final_tap = _named_tap(model, tensors, final, order)
        earlier = [t for t in automatic if order[t.name] < order[final_tap.name]]
        return TapPlan(tuple(earlier), final_tap)

    named = [_named_tap(model, tensors, name, order) for name in dict.fromkeys(layers)]
    named.sort(key=lambda tap: order.get(tap.name, -1))
    if final is None:
        if not named:
            raise LayerError("--layers needs at least one tensor name")
        return TapPlan(tuple(named[:-1]), named[-1])
    final_tap = _named_tap(model, tensors, final, order)
    return TapPlan(tuple(t for t in named if t.name != final_tap.name), final_tap)


def _automatic_taps(model: onnx.ModelProto, tensors: dict[str, TensorInfo]) -> list[Tap]:
    learned = _learned_tensors(model)
    order = {out: i for i, node in enumerate(model.graph.node) for out in node.output}
    by_resolution: dict[tuple[int, int], Tap] = {}
    for _, tapped, reduced in _candidates(model):
        if tapped not in learned:
            continue
        tap = _tap(tapped, tensors.get(tapped))
        out = tensors.get(reduced)
        if tap is None or out is None or out.shape is None or len(out.shape) < 2:
            continue
        out_pixels = 1
        for dim in out.shape[2:] if len(out.shape) == 4 else ():
            if dim is None:
                out_pixels = None
                break
            out_pixels *= dim
        if out_pixels is None or out_pixels >= tap.height * tap.width:
            continue
        key = (tap.height, tap.width)
        if key not in by_resolution or order[tapped] < order[by_resolution[key].name]:
            by_resolution[key] = tap
    return sorted(by_resolution.values(), key=lambda tap: order[tap.name])


def _named_tap(model: onnx.ModelProto, tensors: dict[str, TensorInfo], name: str, order: dict[str, int]) -> Tap:
    if name not in order:
        close = difflib.get_close_matches(name, list(order), n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise LayerError(f"no tensor named {name!r} in the model{hint}")
    tap = _tap(name, tensors.get(name))
    if tap is None:
        info = tensors.get(name)
        shape = "unknown" if info is None or info.shape is None else list(info.shape)
        raise LayerError(f"tensor {name!r} is not a (batch, channels, height, width) feature map (shape {shape})")
    return tap
