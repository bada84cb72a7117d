"""The model's image input: name, layout (NCHW or NHWC), size, channels, fixed batch and dtype."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from ..errors import ModelError

IMAGE_CHANNELS = (1, 3)
# The image size used where the graph leaves its input size open.
DEFAULT_SIZE = (224, 224)


@dataclass(frozen=True)
class InputSpec:
    """How to feed the model one batch of images.

    Attributes:
        name: the graph input's name.
        layout: ``"NCHW"`` or ``"NHWC"``.
        channels: image channels (3, or 1 for greyscale models).
        height, width: the input size, ``None`` when the graph leaves it open.
        batch: the fixed batch size, ``None`` when the batch is dynamic.
        dtype: numpy dtype of the input (float32 or float16).
    """

    name: str
    layout: str
    channels: int
    height: int | None
    width: int | None
    batch: int | None
    dtype: np.dtype

    @property
    def size(self) -> tuple[int, int] | None:
        """``(H, W)`` fixed by the graph, or ``None``."""
        if self.height is None or self.width is None:
            return None
        return self.height, self.width

    @property
    def size_or_default(self) -> tuple[int, int]:
        """``(H, W)`` to feed: the graph's, or :data:`DEFAULT_SIZE` where it leaves the size open."""
        return self.size or DEFAULT_SIZE


def image_input(model: onnx.ModelProto) -> InputSpec:
    """Read the image input of ``model``.

    Raises:
        ModelError: the model does not have exactly one rank-4 float input.
    """
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(v.name for v in inputs) or "none"
        raise ModelError(f"PFV needs a model with one image input; this one has {len(inputs)} ({names})")
    value = inputs[0]
    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim]
    if len(dims) != 4:
        raise ModelError(f"input {value.name!r} has rank {len(dims)}; PFV needs an image batch of rank 4")
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type))
    if dtype.kind != "f":
        raise ModelError(f"input {value.name!r} is {dtype}; PFV feeds float images")
    layout = _layout(model, value.name, dims)
    if layout == "NCHW":
        batch, channels, height, width = dims
    else:
        batch, height, width, channels = dims
    if channels not in IMAGE_CHANNELS:
        raise ModelError(f"input {value.name!r} has {channels} channels in layout {layout}; PFV feeds RGB (3) or greyscale (1) images")
    return InputSpec(value.name, layout, channels, height, width, batch, dtype)


def _layout(model: onnx.ModelProto, name: str, dims: list[int | None]) -> str:
    channels_first = dims[1] in IMAGE_CHANNELS
    channels_last = dims[3] in IMAGE_CHANNELS
    if channels_first != channels_last:
        return "NCHW" if channels_first else "NHWC"
    # Ambiguous (e.g. a 3x3 image or unknown dims): NHWC graphs transpose their input to NCHW first.
    for node in model.graph.node:
        if name in node.input and node.op_type == "Transpose":
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            if perm == [0, 3, 1, 2]:
                return "NHWC"
    return "NCHW"


def pin_input_size(model: onnx.ModelProto, spec: InputSpec, size: tuple[int, int]) -> tuple[onnx.ModelProto, InputSpec]:
    """A copy of ``model`` whose image input has the fixed size ``(H, W)``, and the updated spec.

    Raises:
        ModelError: the input already has a different fixed size.
    """
    if spec.size is not None:
        if tuple(spec.size) != tuple(size):
            raise ModelError(f"the model's input is {spec.size[0]} x {spec.size[1]}; it cannot take {size[0]} x {size[1]}")
        return model, spec
    out = onnx.ModelProto()
    out.CopyFrom(model)
    value = next(v for v in out.graph.input if v.name == spec.name)
    dims = value.type.tensor_type.shape.dim
    axes = (2, 3) if spec.layout == "NCHW" else (1, 2)
    for axis, length in zip(axes, size):
        dims[axis].Clear()
        dims[axis].dim_value = int(length)
    return out, InputSpec(spec.name, spec.layout, spec.channels, int(size[0]), int(size[1]), spec.batch, spec.dtype)
