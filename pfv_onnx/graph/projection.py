"""A model of its own for the projection of a feature map on a few directions, run where the feature map is."""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

# Opset of the projection model: any onnxruntime that reads the tapped models runs it.
OPSET = 13


def projection_model(elem_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """``scores = components @ (features - mean)`` over each image's pixels: inputs ``features``
    ``(B, C, h, w)`` (of ``elem_type``, float32 or float16: cast to float32 first), ``mean`` ``(1, C, 1, 1)``
    and ``components`` ``(k, C)`` float32; output ``scores`` ``(B, k, h * w)`` float32. A ``MatMul``, not a
    1x1 ``Conv``: OpenVINO's CPU plugin takes no convolution whose weights are an input."""
    nodes = []
    features = "features"
    if elem_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["features"], ["features_float"], to=TensorProto.FLOAT))
        features = "features_float"
    nodes += [
        helper.make_node("Sub", [features, "mean"], ["centred"]),
        helper.make_node("Constant", [], ["by_pixel"], value=helper.make_tensor("by_pixel", TensorProto.INT64, [3], [0, 0, -1])),
        helper.make_node("Reshape", ["centred", "by_pixel"], ["rows"]),
        helper.make_node("MatMul", ["components", "rows"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "pfv_projection",
        [helper.make_tensor_value_info("features", elem_type, ["B", "C", "h", "w"]),
         helper.make_tensor_value_info("mean", TensorProto.FLOAT, [1, "C", 1, 1]),
         helper.make_tensor_value_info("components", TensorProto.FLOAT, ["k", "C"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["B", "k", "pixels"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model
