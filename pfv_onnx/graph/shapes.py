"""Tensor shapes and element types from ONNX shape inference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, shape_inference


@dataclass(frozen=True)
class TensorInfo:
    """A tensor's element type (``onnx.TensorProto`` enum) and shape; ``None`` marks an unknown dim."""

    elem_type: int
    shape: tuple[int | None, ...] | None

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(helper.tensor_dtype_to_np_dtype(self.elem_type))

    @property
    def known(self) -> bool:
        return self.shape is not None and all(d is not None for d in self.shape[1:])


def value_info_to_tensor(value: onnx.ValueInfoProto) -> TensorInfo | None:
    if not value.type.HasField("tensor_type"):
        return None
    tensor = value.type.tensor_type
    shape = None
    if tensor.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
    return TensorInfo(tensor.elem_type, shape)


def infer_tensors(model: onnx.ModelProto) -> dict[str, TensorInfo]:
    """Type and shape of every tensor shape inference can reach (graph inputs, outputs, intermediates)."""
    try:
        inferred = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:
        # Inference can fail on unusual graphs; the caller probes whatever stays unknown.
        inferred = model
    graph = inferred.graph
    tensors: dict[str, TensorInfo] = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        info = value_info_to_tensor(value)
        if info is not None:
            tensors[value.name] = info
    for init in graph.initializer:
        tensors.setdefault(init.name, TensorInfo(init.data_type, tuple(init.dims)))
    return tensors
