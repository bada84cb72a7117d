"""Constant tensors of a graph: initializers and the values of Constant nodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_tensor, uses_external_data

from ..errors import ModelError, first_line
from .model_io import weight_file


def attribute(node: onnx.NodeProto, name: str):
    """The value of a node's attribute, or ``None``."""
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return None


def constant_tensors(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    """Initializers and Constant-node tensors by name. The protos themselves, so edits land in the model."""
    found = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    found[node.output[0]] = attr.t
    return found


def constant_array(tensor: onnx.TensorProto, folder: Path | None = None) -> np.ndarray:
    """The values of a constant tensor. Values in an external file are read from ``folder``, the folder of the
    model file (:func:`~pfv_onnx.graph.weights_folder`), never from the current folder; without ``folder``
    such a tensor is refused."""
    if not uses_external_data(tensor):
        return numpy_helper.to_array(tensor)
    weight_file(folder, ExternalDataInfo(tensor).location)  # inside the model's folder, a regular file
    loaded = onnx.TensorProto()
    loaded.CopyFrom(tensor)
    try:
        load_external_data_for_tensor(loaded, str(folder.resolve()))
        return numpy_helper.to_array(loaded)
    except (OSError, ValueError, onnx.checker.ValidationError) as exc:
        raise ModelError(f"cannot read the model's external weight {tensor.name!r} ({first_line(exc)})") from None
