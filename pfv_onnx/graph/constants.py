"""Constant tensors of a graph: initializers and the values of Constant nodes."""

from __future__ import annotations

import onnx


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
