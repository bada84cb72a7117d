"""Models the benchmarks build themselves: a VGG16 with random weights, written with onnx.helper (no torch)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# torchvision's VGG16 ("D"): channels per 3x3 conv, "M" for a 2x2 max-pool.
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def _classifier(nodes: list, inits: list, name: str, size: int, classes: int) -> onnx.ModelProto:
    """The graph of ``nodes`` from ``image`` (dynamic batch, 3 x size x size) to ``logits``, checked."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def vgg16_random(size: int = 224, seed: int = 0, classes: int = 1000, pooled_head: bool = False) -> onnx.ModelProto:
    """VGG16 (conv + ReLU, max-pools, the 4096-4096-1000 head) with He-normal random weights, dynamic batch.
    ``pooled_head`` replaces the 120-million-weight head with global average pooling and one linear layer
    (the convolutions, and so the features PFV reads, are the same)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def weight(name: str, shape: tuple[int, ...], fan_in: int) -> str:
        w = rng.standard_normal(shape, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        inits.append(numpy_helper.from_array(w, name))
        return name

    def zeros(name: str, n: int) -> str:
        inits.append(numpy_helper.from_array(np.zeros(n, np.float32), name))
        return name

    x, channels, side = "image", 3, size
    for i, item in enumerate(VGG16):
        if item == "M":
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{i}"], kernel_shape=[2, 2], strides=[2, 2]))
            x, side = f"pool{i}", side // 2
            continue
        w = weight(f"conv{i}.w", (item, channels, 3, 3), channels * 9)
        b = zeros(f"conv{i}.b", item)
        nodes.append(helper.make_node("Conv", [x, w, b], [f"conv{i}"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        x, channels = f"relu{i}", item
    if pooled_head:
        nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
        x, side = "pooled", 1
    nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1))
    x, width = "flat", channels * side * side
    for j, out in enumerate((classes,) if pooled_head else (4096, 4096, classes)):
        w = weight(f"fc{j}.w", (out, width), width)
        b = zeros(f"fc{j}.b", out)
        y = "logits" if out == classes and j == (0 if pooled_head else 2) else f"fc{j}"
        nodes.append(helper.make_node("Gemm", [x, w, b], [y], transB=1))
        if y != "logits":
            nodes.append(helper.make_node("Relu", [y], [f"fc{j}.relu"]))
            y = f"fc{j}.relu"
        x, width = y, out
    return _classifier(nodes, inits, "vgg16_random", size, classes)


def resnet50_random(size: int = 224, seed: int = 0, classes: int = 1000) -> onnx.ModelProto:
    """ResNet-50 (v1.5: stride on the 3x3 convolution; BatchNorm folded away) with He-normal random
    weights, global average pooling and a linear head, dynamic batch."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    counter = iter(range(10**6))

    def conv(x: str, cin: int, cout: int, k: int, stride: int = 1, relu: bool = True) -> str:
        i = next(counter)
        w = rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.float32(np.sqrt(2.0 / (cin * k * k)))
        inits.append(numpy_helper.from_array(w, f"c{i}.w"))
        inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), f"c{i}.b"))
        nodes.append(helper.make_node("Conv", [x, f"c{i}.w", f"c{i}.b"], [f"c{i}"], kernel_shape=[k, k], strides=[stride] * 2, pads=[k // 2] * 4))
        if not relu:
            return f"c{i}"
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        return f"r{i}"

    x = conv("image", 3, 64, 7, stride=2)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
    x, channels = "pool", 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            s = stride if b == 0 else 1
            out = width * 4
            y = conv(x, channels, width, 1)
            y = conv(y, width, width, 3, stride=s)
            y = conv(y, width, out, 1, relu=False)
            shortcut = conv(x, channels, out, 1, stride=s, relu=False) if (s != 1 or channels != out) else x
            i = next(counter)
            nodes.append(helper.make_node("Add", [y, shortcut], [f"add{i}"]))
            nodes.append(helper.make_node("Relu", [f"add{i}"], [f"block{i}"]))
            x, channels = f"block{i}", out
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], axis=1))
    w = rng.standard_normal((classes, channels), dtype=np.float32) * np.float32(np.sqrt(1.0 / channels))
    inits += [numpy_helper.from_array(w, "fc.w"), numpy_helper.from_array(np.zeros(classes, np.float32), "fc.b")]
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], transB=1))
    return _classifier(nodes, inits, "resnet50_random", size, classes)


def mobilenet_v2_qdq(calibration: int = 8) -> onnx.ModelProto:
    """The bundled MobileNetV2 quantised statically the way onnxruntime recommends on the CPU (QDQ, 8-bit
    unsigned activations, signed weights), calibrated on the sample photos."""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from pfv_onnx import PFV
    from pfv_onnx.images import bundled

    inputs = PFV().featurizer.load(bundled.sample_images()[:calibration]).inputs

    class Photos(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"image": inputs[i : i + 1]} for i in range(len(inputs))])

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "qdq.onnx"
        quantize_static(str(bundled.model_path()), str(path), Photos(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        return onnx.load(str(path))


def vit_random(size: int = 224, patch: int = 16, dim: int = 384, depth: int = 12, heads: int = 6, prefix: int = 1,
               classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    """A ViT (ViT-S/16 by default: pre-norm blocks of attention and a 4x MLP, LayerNormalization, GELU)
    with random weights, ``prefix`` tokens before the patches (1: a class token; 2: DeiT's class and
    distillation tokens; 5: a class token and four registers), the head reading the first; dynamic batch."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    counter = iter(range(10**6))

    def const(value: np.ndarray) -> str:
        name = f"k{next(counter)}"
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], **attributes) -> str:
        out = f"t{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], **attributes))
        return out

    def linear(x: str, cin: int, cout: int) -> str:
        w = rng.standard_normal((cin, cout), dtype=np.float32) * np.float32(np.sqrt(1.0 / cin))
        return node("Add", [node("MatMul", [x, const(w)]), const(np.zeros(cout, np.float32))])

    def norm(x: str) -> str:
        return node("LayerNormalization", [x, const(np.ones(dim, np.float32)), const(np.zeros(dim, np.float32))], axis=-1)

    grid = size // patch
    w = rng.standard_normal((dim, 3, patch, patch), dtype=np.float32) * np.float32(np.sqrt(1.0 / (3 * patch * patch)))
    x = node("Conv", ["image", const(w), const(np.zeros(dim, np.float32))], kernel_shape=[patch, patch], strides=[patch, patch])
    x = node("Transpose", [node("Reshape", [x, const(np.array([0, dim, grid * grid], np.int64))])], perm=[0, 2, 1])
    batch = node("Gather", [node("Shape", ["image"]), const(np.array([0], np.int64))], axis=0)
    shape = node("Concat", [batch, const(np.array([prefix, dim], np.int64))], axis=0)
    others = node("Expand", [const(rng.standard_normal((1, prefix, dim), dtype=np.float32) * np.float32(0.02)), shape])
    x = node("Add", [node("Concat", [others, x], axis=1), const(rng.standard_normal((1, prefix + grid * grid, dim), dtype=np.float32) * np.float32(0.02))])
    tokens, head_dim = prefix + grid * grid, dim // heads
    for _ in range(depth):
        qkv = node("Reshape", [linear(norm(x), dim, 3 * dim), const(np.array([0, tokens, 3, heads, head_dim], np.int64))])
        q, k, v = (node("Transpose", [node("Gather", [qkv, const(np.array(i, np.int64))], axis=2)], perm=[0, 2, 1, 3]) for i in range(3))
        scores = node("Mul", [node("MatMul", [q, node("Transpose", [k], perm=[0, 1, 3, 2])]), const(np.float32(head_dim**-0.5))])
        attended = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        merged = node("Reshape", [node("Transpose", [attended], perm=[0, 2, 1, 3]), const(np.array([0, tokens, dim], np.int64))])
        x = node("Add", [x, linear(merged, dim, dim)])
        hidden = linear(norm(x), dim, 4 * dim)
        gelu = node("Mul", [node("Mul", [hidden, const(np.float32(0.5))]), node("Add", [node("Erf", [node("Mul", [hidden, const(np.float32(2**-0.5))])]), const(np.float32(1.0))])])
        x = node("Add", [x, linear(gelu, 4 * dim, dim)])
    first = node("Gather", [norm(x), const(np.array(0, np.int64))], axis=1)
    w = rng.standard_normal((classes, dim), dtype=np.float32) * np.float32(np.sqrt(1.0 / dim))
    nodes.append(helper.make_node("Gemm", [first, const(w), const(np.zeros(classes, np.float32))], ["logits"], transB=1))
    return _classifier(nodes, inits, "vit_random", size, classes)
