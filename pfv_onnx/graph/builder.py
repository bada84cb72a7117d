"""Appending nodes to an ONNX graph: fresh names, constants, and bilinear resizing as two ``MatMul``."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .constants import constant_tensors


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` float64 matrix of 1-D linear interpolation with half-pixel centres, borders clamped.

    Row ``i`` reads the input at ``(i + 0.5) * n_in / n_out - 0.5``; a 2-D bilinear resize of ``X`` is
    ``R_h @ X @ R_w.T``.
    """
    source = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = source - low
    matrix = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, low), 1.0 - frac)
    np.add.at(matrix, (rows, high), frac)
    return matrix


class GraphBuilder:
    """Appends nodes and constants to a graph under fresh names that cannot collide with its own."""

    def __init__(self, model: onnx.ModelProto):
        self.graph = model.graph
        # IR version 3 graphs list every initializer among the inputs too.
        self.initializers_are_inputs = model.ir_version < 4
        graph = model.graph
        self.used = {v.name for v in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]}
        for node in graph.node:
            self.used.update(node.output)
            self.used.update(node.input)
            self.used.add(node.name)
        # The model's own producers and constants (what is added here is neither).
        self.producer = {out: node for node in graph.node for out in node.output}
        self.constants = constant_tensors(model)
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)

    def fresh(self, wanted: str) -> str:
        name, k = wanted, 1
        while name in self.used:
            name, k = f"{wanted}_{k}", k + 1
        self.used.add(name)
        return name

    def constant(self, array: np.ndarray, wanted: str) -> str:
        tensor = numpy_helper.from_array(array, self.fresh(wanted))
        self.graph.initializer.append(tensor)
        if self.initializers_are_inputs:
            self.graph.input.append(helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
        return tensor.name

    def node(self, op: str, inputs: list[str], wanted: str, **attributes) -> str:
        output = self.fresh(wanted)
        self.graph.node.append(helper.make_node(op, inputs, [output], name=self.fresh(f"{wanted}/{op}"), **attributes))
        return output

    def as_float(self, name: str, elem_type: int, wanted: str) -> str:
        """``name`` as float32: a ``Cast`` unless it is float32 already (a float16 tensor's sums overflow)."""
        if elem_type in (TensorProto.FLOAT, TensorProto.UNDEFINED):
            return name
        return self.node("Cast", [name], wanted, to=TensorProto.FLOAT)

    def resize(self, name: str, source: tuple[int, int], size: tuple[int, int], wanted: str) -> str:
        """Append ``R_h @ (x @ R_w.T)``: the bilinear resize of a ``(..., h, w)`` float32 tensor to
        ``(..., H, W)`` (:func:`bilinear_matrix`; no node when the size is already ``size``)."""
        if tuple(source) == tuple(size):
            return name
        rows = self.constant(bilinear_matrix(source[0], size[0]).astype(np.float32), f"{wanted}/rows")
        cols = self.constant(bilinear_matrix(source[1], size[1]).T.astype(np.float32), f"{wanted}/cols")
        wide = self.node("MatMul", [name, cols], f"{wanted}/wide")
        return self.node("MatMul", [rows, wide], f"{wanted}/full")

    def reduce(self, op: str, name: str, axes: list[int], wanted: str) -> str:
        """Append ``op`` (``ReduceMax``, ``ReduceMean``) over ``axes``, dimensions kept (its axes became an
        input in opset 18)."""
        if self.opset >= 18:
            return self.node(op, [name, self.constant(np.array(axes, np.int64), f"{wanted}/axes")], wanted, keepdims=1)
        return self.node(op, [name], wanted, axes=axes, keepdims=1)
