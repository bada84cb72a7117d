"""The receptive field of a tensor: how many input pixels one of its cells can see, and its stride.

Walked through the graph in node order from the image input: a convolution or pooling with kernel ``k``,
stride ``s`` and dilation ``d`` widens the field by ``(k - 1) * d`` times the stride so far and multiplies
the stride by ``s``; a node with several inputs (a residual sum, a concatenation) takes the widest field
and the largest stride of its inputs; any other node passes them on. This is the theoretical field; the
region that matters in practice (the effective field) is far smaller (Luo et al., NeurIPS 2016).
"""

from __future__ import annotations

from typing import NamedTuple

import onnx

from .constants import attribute, constant_tensors

WINDOWED = {"Conv", "MaxPool", "AveragePool", "LpPool", "ConvInteger", "QLinearConv"}
GLOBAL = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"}
# Whole-image size for a global pool's field: larger than any input.
UNBOUNDED = 1 << 30


class ReceptiveField(NamedTuple):
    """``size``: input pixels a cell sees along one side; ``stride``: input pixels between neighbouring cells."""

    size: int
    stride: int


def receptive_field(model: onnx.ModelProto, tensor: str, image_input: str) -> ReceptiveField:
    """The receptive field of ``tensor``'s cells in the input ``image_input`` (see the module docstring).

    Raises:
        ValueError: ``tensor`` does not depend on ``image_input``.
    """
    fields = {image_input: ReceptiveField(1, 1)}
    constants = constant_tensors(model)
    for node in model.graph.node:
        inputs = [fields[name] for name in node.input if name in fields]
        if not inputs:
            continue
        size, stride = max(f.size for f in inputs), max(f.stride for f in inputs)
        if node.op_type in WINDOWED:
            kernel = _kernel(node, constants)
            strides = attribute(node, "strides") or [1]
            dilations = attribute(node, "dilations") or [1]
            size += (kernel - 1) * max(dilations) * stride
            stride *= max(strides)
        elif node.op_type in GLOBAL:
            size = UNBOUNDED
        for output in node.output:
            fields[output] = ReceptiveField(size, stride)
    if tensor not in fields:
        raise ValueError(f"{tensor!r} does not depend on the input {image_input!r}")
    return fields[tensor]


def _kernel(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> int:
    """The largest side of a node's window: its ``kernel_shape``, else its weight's spatial dims."""
    shape = attribute(node, "kernel_shape")
    if shape:
        return max(shape)
    weight_index = 3 if node.op_type == "QLinearConv" else 1
    if len(node.input) > weight_index and node.input[weight_index] in constants:
        dims = list(constants[node.input[weight_index]].dims)[2:]
        return max(dims) if dims else 1
    return 1
