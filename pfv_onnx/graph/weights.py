"""Re-initialising a model's learned weights: the model-parameter randomisation test of Adebayo et al.

A map that still looks the same after the weights are randomised shows the image, not what the network
learnt. The weights of Conv, ConvTranspose, Gemm and MatMul are redrawn He-normal (std ``sqrt(2 / fan_in)``)
and their biases set to zero, from a seeded generator.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import ModelError
from .constants import constant_array, constant_tensors
from .rewrite import read_tapped_outputs

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def weighted_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Nodes with learned weights stored as initializers or Constant nodes, in graph order."""
    stored = constant_tensors(model)
    return [n for n in model.graph.node if n.op_type in WEIGHTED_OPS and len(n.input) > 1 and n.input[1] in stored]


def reinitialise(model: onnx.ModelProto, layers: Iterable[int] | None = None, seed: int = 0) -> onnx.ModelProto:
    """A copy of ``model`` whose weighted layers (all, or those at the given positions in
    :func:`weighted_nodes`: node names may be empty or repeated) have fresh random weights.

    Raises:
        ModelError: ``model`` was tapped already (its channel sums and upsampling are weights too).
    """
    if read_tapped_outputs(model) is not None:
        raise ModelError("re-initialise the original model, not a tapped one")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    chosen = weighted_nodes(out)
    if layers is not None:
        chosen = [chosen[i] for i in sorted(set(layers))]
    stored = constant_tensors(out)
    rng = np.random.default_rng(seed)
    for node in chosen:
        weight = stored[node.input[1]]
        w = constant_array(weight)
        if w.ndim < 2:
            continue
        # Conv/ConvTranspose weights are (out, in, k...); Gemm (out, in) with transB, else (in, out); MatMul (in, out).
        fan_in = int(np.prod(w.shape[1:])) if node.op_type in ("Conv", "ConvTranspose") else _matrix_fan_in(node, w)
        fresh = rng.standard_normal(w.shape) * np.sqrt(2.0 / max(fan_in, 1))
        weight.CopyFrom(numpy_helper.from_array(fresh.astype(w.dtype), weight.name))
        if len(node.input) > 2 and node.input[2] in stored:
            bias = stored[node.input[2]]
            b = constant_array(bias)
            bias.CopyFrom(numpy_helper.from_array(np.zeros_like(b), bias.name))
    return out


def _matrix_fan_in(node: onnx.NodeProto, w: np.ndarray) -> int:
    trans_b = any(a.name == "transB" and a.i for a in node.attribute)
    return int(w.shape[-1] if node.op_type == "Gemm" and trans_b else w.shape[-2])
