"""Tiny synthetic CNNs built with onnx.helper, for graph shapes the real models do not cover."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Net:
    """A small graph builder: ``conv``, ``pool`` ... append nodes and return their output names."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, array: np.ndarray, prefix: str = "w") -> str:
        name = self.name(prefix)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], prefix: str | None = None, **attrs) -> str:
        out = self.name(prefix or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, relu: bool = True) -> str:
        w = self.const((self.rng.standard_normal((cout, cin, k, k)) * np.sqrt(2 / (cin * k * k))).astype(np.float32))
        b = self.const(self.rng.standard_normal(cout).astype(np.float32) * 0.1, "b")
        y = self.op("Conv", [x, w, b], kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)
        return self.op("Relu", [y]) if relu else y

    def maxpool(self, x: str) -> str:
        return self.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])

    def gemm(self, x: str, cin: int, cout: int) -> str:
        w = self.const((self.rng.standard_normal((cout, cin)) / np.sqrt(cin)).astype(np.float32))
        b = self.const(np.zeros(cout, np.float32), "b")
        return self.op("Gemm", [x, w, b], "logits", transB=1)

    def model(self, inputs, outputs, opset: int = 13, ir_version: int | None = None) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, "synthetic", inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        if ir_version is not None:
            model.ir_version = ir_version
        onnx.checker.check_model(model)
        return model


def image(name="image", batch="N", size=32, layout="NCHW"):
    shape = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def output(name: str, shape=None):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def vgg_like(opset: int = 13):
    """conv-conv-pool x3 then Flatten+Gemm. Taps: the inputs of pools 1 and 2; F_N: pool 3's input."""
    net = Net()
    x = net.conv("image", 3, 8)
    x = net.conv(x, 8, 8)
    pool1_in = x
    x = net.maxpool(x)
    pool2_in = x = net.conv(x, 8, 16)
    x = net.maxpool(x)
    pool3_in = x = net.conv(x, 16, 16)
    x = net.maxpool(x)
    x = net.op("Flatten", [x], axis=1)
    logits = net.gemm(x, 16 * 4 * 4, 10)
    model = net.model([image()], [output(logits, ["N", 10])], opset=opset)
    return model, [pool1_in, pool2_in], pool3_in


def resnet_like():
    """Stem conv (stride 2 on the image), a stage, then a block whose 3x3 conv and 1x1 shortcut both have
    stride 2, then global average pooling. Taps: the stage output (not the bottleneck's inner tensor);
    F_N: the tensor entering the pooling."""
    net = Net()
    stem = net.conv("image", 3, 8, stride=2)  # 16x16; its input is the image: not a tap
    stage1 = net.op("Relu", [net.op("Add", [stem, net.conv(stem, 8, 8, relu=False)])])
    inner = net.conv(stage1, 8, 8, k=1)
    branch = net.conv(inner, 8, 16, stride=2, relu=False)  # inner tensor feeds a strided conv
    shortcut = net.conv(stage1, 8, 16, k=1, stride=2, relu=False)  # and so does the stage output
    stage2 = net.op("Relu", [net.op("Add", [branch, shortcut])])
    pooled = net.op("GlobalAveragePool", [stage2])
    logits = net.gemm(net.op("Flatten", [pooled], axis=1), 16, 10)
    return net.model([image()], [output(logits, ["N", 10])], opset=17), [stage1], stage2


def fixed_batch_reshape_head():
    """Fixed batch 1 (as in the ONNX model zoo) with a ``Reshape [1, -1]`` head."""
    net = Net()
    a = net.conv("image", 3, 8)
    b = net.conv(net.maxpool(a), 8, 12)
    flat = net.op("Reshape", [net.maxpool(b), net.const(np.array([1, -1], np.int64), "shape")])
    logits = net.gemm(flat, 12 * 8 * 8, 5)
    return net.model([image(batch=1)], [output(logits, [1, 5])], opset=13), [a], b


def nhwc_input():
    """An NHWC image transposed to NCHW, then a strided conv on the transposed image (not a tap)."""
    net = Net()
    nchw = net.op("Transpose", ["image"], perm=[0, 3, 1, 2])
    a = net.conv(nchw, 3, 8, stride=2)
    b = net.conv(a, 8, 16, stride=2)
    pooled = net.op("GlobalAveragePool", [b])
    logits = net.gemm(net.op("Flatten", [pooled], axis=1), 16, 4)
    return net.model([image(layout="NHWC")], [output(logits, ["N", 4])], opset=13), [a], b


def channels_last_mean_head():
    """A Keras-style head: Transpose to NHWC and ReduceMean over axes [1, 2] (opset 18: axes as an input)."""
    net = Net()
    a = net.conv("image", 3, 8)
    b = net.conv(net.maxpool(a), 8, 16)
    nhwc = net.op("Transpose", [b], perm=[0, 2, 3, 1])
    pooled = net.op("ReduceMean", [nhwc, net.const(np.array([1, 2], np.int64), "axes")], keepdims=0)
    logits = net.gemm(pooled, 16, 3)
    return net.model([image()], [output(logits, ["N", 3])], opset=18), [a], b


def old_ir_version():
    """Opset 8 and IR version 3: every initializer is also listed among the graph inputs."""
    model, taps, final = vgg_like(opset=8)
    for init in model.graph.initializer:
        model.graph.input.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    model.ir_version = 3
    onnx.checker.check_model(model)
    return model, taps, final


def shapes_unknown_to_inference():
    """A Reshape whose target shape is computed at run time from a data value, so shape inference cannot
    know the shapes below it; only a probe run can."""
    net = Net()
    a = net.conv("image", 3, 8)
    # shape = [0, 0, 16 * s, 16 / s] with s = ReduceMax(Relu(0 * x)) + 1 = 1: data-dependent, known only at run time.
    zero = net.op("Mul", [a, net.const(np.zeros(1, np.float32), "z")])
    scale = net.op("Add", [net.op("ReduceMax", [zero], keepdims=0), net.const(np.ones((), np.float32), "one")])
    factor = net.op("Cast", [scale], to=TensorProto.INT64)
    dims = net.op("Concat", [net.const(np.array([0, 0], np.int64), "nc"), net.op("Mul", [net.const(np.array([32, 32], np.int64), "hw"), net.op("Reshape", [factor, net.const(np.array([1], np.int64), "one_d")])])], axis=0)
    b = net.op("Reshape", [a, dims])
    c = net.conv(net.maxpool(b), 8, 16)
    pooled = net.op("GlobalMaxPool", [c])
    logits = net.gemm(net.op("Flatten", [pooled], axis=1), 16, 2)
    return net.model([image()], [output(logits, ["N", 2])], opset=13), [b], c


def no_spatial_layer():
    """An image input that only meets a Flatten and a Gemm: nothing reduces spatial size."""
    net = Net()
    flat = net.op("Flatten", ["image"], axis=1)
    logits = net.gemm(flat, 3 * 32 * 32, 2)
    return net.model([image()], [output(logits, ["N", 2])])


def squeeze_excitation():
    """Two stages whose blocks have squeeze-and-excitation (a GlobalAveragePool inside every block), then the
    head's pooling. An SE block's pooling only rescales its own input, so it is no downsampling: the 32 px
    tap is the tensor entering the strided convolution (stage 1's output, after its SE block), and F_N the
    tensor entering the head's pooling, not an SE block's input."""
    net = Net()

    def se_block(x: str, channels: int) -> str:
        squeezed = net.op("GlobalAveragePool", [x])
        gate = net.op("Sigmoid", [net.conv(squeezed, channels, channels, k=1, relu=False)])
        return net.op("Mul", [x, gate])

    first = net.conv("image", 3, 8)
    stage1 = se_block(first, 8)
    down = net.conv(stage1, 8, 16, stride=2)  # stage 1's output (after SE) feeds the strided conv
    block_a = se_block(down, 16)
    block_b = se_block(net.conv(block_a, 16, 16), 16)
    head_in = net.conv(block_b, 16, 32, k=1)
    pooled = net.op("GlobalAveragePool", [head_in])
    logits = net.gemm(net.op("Flatten", [pooled], axis=1), 32, 3)
    return net.model([image()], [output(logits, ["N", 3])], opset=13), [stage1], head_in


def valid_convolutions():
    """Stride-1 convolutions without padding shrink the map by a border; they are not taps."""
    net = Net()
    w = net.const(np.random.default_rng(1).standard_normal((8, 3, 3, 3)).astype(np.float32))
    a = net.op("Relu", [net.op("Conv", ["image", w], kernel_shape=[3, 3])])  # 32 -> 30, stride 1
    w2 = net.const(np.random.default_rng(2).standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.1)
    b = net.op("Relu", [net.op("Conv", [a, w2], kernel_shape=[3, 3])])  # 30 -> 28, stride 1
    c = net.conv(net.maxpool(b), 8, 8)
    pooled = net.op("GlobalAveragePool", [c])
    logits = net.gemm(net.op("Flatten", [pooled], axis=1), 8, 2)
    return net.model([image()], [output(logits, ["N", 2])]), [b], c


def final_is_an_output():
    """A feature extractor whose graph output is the feature map itself, besides its pooled vector."""
    net = Net()
    a = net.conv("image", 3, 8)
    b = net.conv(net.maxpool(a), 8, 16)
    pooled = net.op("GlobalAveragePool", [b])
    return net.model([image()], [output(b, ["N", 16, 16, 16]), output(pooled, ["N", 16, 1, 1])]), [a], b


def final_channels_unknown():
    """A feature extractor whose graph output is the feature map, with a channel count the graph leaves
    open (``C``) and that neither shape inference nor onnxruntime can know: a Reshape to a target computed
    at run time (16 channels)."""
    net = Net()
    a = net.conv("image", 3, 8)
    b = net.conv(net.maxpool(a), 8, 16)
    # target [0, 16 s, 16 s, 0] with s = (max(b) > -1) = 1 (b is a Relu's): data-dependent, known only at
    # run time (with one open dimension, onnxruntime would infer it from the element count).
    positive = net.op("Greater", [net.op("ReduceMax", [b], keepdims=0), net.const(np.array(-1.0, np.float32), "minus_one")])
    scale = net.op("Reshape", [net.op("Cast", [positive], to=TensorProto.INT64), net.const(np.array([1], np.int64), "one_d")])
    sides = net.op("Mul", [net.const(np.array([16, 16], np.int64), "sides"), scale])
    target = net.op("Concat", [net.const(np.array([0], np.int64), "n"), sides, net.const(np.array([0], np.int64), "w")], axis=0)
    c = net.op("Relu", [net.op("Reshape", [b, target])])
    pooled = net.op("GlobalAveragePool", [c])
    return net.model([image()], [output(c, ["N", "C", "H", 16]), output(pooled, ["N", "C", 1, 1])]), [a], c


def float16(scale: float = 300.0):
    """A float16 model whose feature maps hold values in the hundreds over 256 channels: their channel
    sums overflow float16 (max 65504)."""
    net = Net()
    nodes_in = net.op("Cast", ["image"], to=TensorProto.FLOAT16)
    w1 = net.const(np.full((256, 3, 3, 3), scale / 27, np.float16))
    a = net.op("Relu", [net.op("Conv", [nodes_in, w1], kernel_shape=[3, 3], pads=[1, 1, 1, 1])])
    pooled_a = net.op("MaxPool", [a], kernel_shape=[2, 2], strides=[2, 2])
    w2 = net.const((np.random.default_rng(0).random((16, 256, 1, 1)) / 256).astype(np.float16))
    b = net.op("Relu", [net.op("Conv", [pooled_a, w2], kernel_shape=[1, 1])])
    pooled = net.op("Cast", [net.op("GlobalAveragePool", [b])], to=TensorProto.FLOAT)
    model = net.model([helper.make_tensor_value_info("image", TensorProto.FLOAT16, ["N", 3, 32, 32])], [output(pooled, ["N", 16, 1, 1])])
    return model, [a], b


def fixed_batch(n: int = 4):
    """The VGG-like graph with a fixed batch of ``n``: runs pad the last chunk."""
    model, taps, final = vgg_like()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[0].Clear()
    dims[0].dim_value = n
    out_dims = model.graph.output[0].type.tensor_type.shape.dim
    out_dims[0].Clear()
    out_dims[0].dim_value = n
    onnx.checker.check_model(model)
    return model, taps, final


def dynamic_size():
    """The VGG-like graph with an open input size: ``(N, 3, H, W)``."""
    model, taps, final = vgg_like()
    net = Net()
    a = net.conv("image", 3, 8)
    b = net.conv(net.maxpool(a), 8, 16)
    pooled = net.op("GlobalAveragePool", [b])
    logits = net.gemm(net.op("Flatten", [pooled], axis=1), 16, 4)
    dynamic = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    return net.model([dynamic], [output(logits, ["N", 4])]), [a], b


def control_flow_head():
    """An ``If`` node in the head: its branches read an outer tensor (the pooled features)."""
    net = Net()
    a = net.conv("image", 3, 8)
    b = net.conv(net.maxpool(a), 8, 16)
    pooled = net.op("Flatten", [net.op("GlobalAveragePool", [b])], axis=1)
    then_out = helper.make_tensor_value_info("then_out", TensorProto.FLOAT, None)
    else_out = helper.make_tensor_value_info("else_out", TensorProto.FLOAT, None)
    then_branch = helper.make_graph([helper.make_node("Identity", [pooled], ["then_out"])], "then", [], [then_out])
    else_branch = helper.make_graph([helper.make_node("Neg", [pooled], ["else_out"])], "else", [], [else_out])
    condition = net.const(np.array(True), "cond")
    chosen = net.op("If", [condition], then_branch=then_branch, else_branch=else_branch)
    logits = net.gemm(chosen, 16, 3)
    return net.model([image()], [output(logits, ["N", 3])]), [a], b


def zero_weights():
    """Every weight zero: all features equal, nothing to contrast."""
    model, taps, final = vgg_like()
    for init in model.graph.initializer:
        init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), init.name))
    return model, taps, final


def half_precision(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` computing in float16: its float weights and constants as float16, a Cast after the input and
    before the output (as a float16 conversion tool leaves a model)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    tensors = [*graph.initializer, *(a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value")]
    for tensor in tensors:
        if tensor.data_type == TensorProto.FLOAT:
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), tensor.name))
    image, logits = graph.input[0].name, graph.output[0].name
    for node in graph.node:
        node.input[:] = [f"{image}_half" if name == image else name for name in node.input]
        node.output[:] = [f"{logits}_half" if name == logits else name for name in node.output]
    graph.node.insert(0, helper.make_node("Cast", [image], [f"{image}_half"], to=TensorProto.FLOAT16))
    graph.node.append(helper.make_node("Cast", [f"{logits}_half"], [logits], to=TensorProto.FLOAT))
    del graph.value_info[:]
    onnx.checker.check_model(out)
    return out


def vgg16_random(classes: int = 10, size: int = 224):
    """VGG16's convolutions (torchvision's "D": 3x3 conv + ReLU, 2x2 max-pools) with He-normal random weights,
    dynamic batch, then global average pooling and one linear layer to ``classes`` logits."""
    net, x, channels = Net(), "image", 3
    for item in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        if item == "M":
            x = net.maxpool(x)
        else:
            x, channels = net.conv(x, channels, item), item
    logits = net.gemm(net.op("Flatten", [net.op("GlobalAveragePool", [x])], axis=1), channels, classes)
    return net.model([image(size=size)], [output(logits, ["N", classes])], opset=17)
