"""The classifier head after ``F_N``, when it is global average pooling followed by one linear layer.

Class activation maps (Zhou et al., CVPR 2016) need that head's weights: for such a network the logit of
class ``k`` is ``sum_c W[k, c] mean_ij F_N(c, i, j) + b[k]``, so ``sum_c W[k, c] F_N(c, i, j)`` shows where
class ``k`` is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from .constants import attribute, constant_array, constant_tensors
from .taps import _reduce_axes, consumers_of

# Ops between the pooling and the linear layer that do not change the values.
PASS_THROUGH = {"Flatten", "Reshape", "Squeeze", "Dropout", "Identity"}


@dataclass(frozen=True)
class LinearHead:
    """``logits = weight @ pooled + bias``: ``weight`` ``(K, C)`` float32, ``bias`` ``(K,)`` float32."""

    weight: np.ndarray
    bias: np.ndarray


def linear_head(model: onnx.ModelProto, final: str, size: tuple[int, int] | None = None, weights_dir: Path | None = None) -> LinearHead | None:
    """The head of ``final`` if it is global average pooling then one Gemm or MatMul (+ Add), else ``None``.

    Args:
        final: tensor name of ``F_N``.
        size: ``(h, w)`` of ``F_N``; an AveragePool whose kernel is exactly this size counts as global.
        weights_dir: the folder of the model file, where weights in external files are read from
            (:func:`~pfv_onnx.graph.weights_folder`).
    """
    consumers = consumers_of(model)
    constants = constant_tensors(model)

    def only_consumer(name: str) -> onnx.NodeProto | None:
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 else None

    node = only_consumer(final)
    if node is None or not _is_global_average(node, constants, size):
        return None
    tensor = node.output[0]
    node = only_consumer(tensor)
    while node is not None and node.op_type in PASS_THROUGH:
        tensor = node.output[0]
        node = only_consumer(tensor)
    if node is None:
        return None
    if node.op_type == "Gemm" and node.input[0] == tensor and node.input[1] in constants:
        if (attribute(node, "transA") or 0) or (attribute(node, "alpha") or 1.0) != 1.0:
            return None
        weight = constant_array(constants[node.input[1]], weights_dir).astype(np.float32)
        weight = weight if attribute(node, "transB") else weight.T
        bias = np.zeros(weight.shape[0], np.float32)
        if len(node.input) > 2 and node.input[2] in constants:
            bias = np.broadcast_to(constant_array(constants[node.input[2]], weights_dir).astype(np.float32) * (attribute(node, "beta") or 1.0), weight.shape[:1]).copy()
        return LinearHead(weight, bias)
    if node.op_type == "MatMul" and node.input[0] == tensor and node.input[1] in constants:
        weight = constant_array(constants[node.input[1]], weights_dir).astype(np.float32).T
        bias = np.zeros(weight.shape[0], np.float32)
        add = only_consumer(node.output[0])
        if add is not None and add.op_type == "Add":
            other = next((i for i in add.input if i != node.output[0]), None)
            if other in constants:
                bias = np.broadcast_to(constant_array(constants[other], weights_dir).astype(np.float32), weight.shape[:1]).copy()
        return LinearHead(weight, bias)
    return None


def _is_global_average(node: onnx.NodeProto, constants, size: tuple[int, int] | None) -> bool:
    if node.op_type == "GlobalAveragePool":
        return True
    if node.op_type == "ReduceMean":
        return _reduce_axes(node, constants) == [2, 3]
    if node.op_type == "AveragePool" and size is not None:
        kernel = attribute(node, "kernel_shape")
        pads = attribute(node, "pads") or [0, 0, 0, 0]
        return list(kernel or []) == list(size) and not any(pads)
    return False
