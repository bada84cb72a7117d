"""The shape probe: shapes that ONNX shape inference leaves unknown, read from one run on a dummy input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ..graph import InputSpec, TensorInfo, add_outputs
from .session import Session


def probe_tensors(
    model: onnx.ModelProto, names: list[str], spec: InputSpec, known: dict[str, TensorInfo], weights_dir: Path | None = None
) -> dict[str, TensorInfo]:
    """Run ``model`` once on zeros and return the type and shape of each tensor in ``names``
    (``weights_dir``: the folder of its external weights, if any).

    The batch dimension is reported as ``None`` unless the model fixes it, as shape inference reports it. A
    tensor whose first axis is not the batch (a transformer's ``(N, B, C)`` inside its attention), or that has
    no axis, has an unknown shape: no rule reads it.
    """
    if not names:
        return {}
    elem_types = {name: known[name].elem_type for name in names if name in known}
    probe = add_outputs(model, names, elem_types)
    batch = spec.batch or 1
    height, width = spec.size_or_default
    shape = (batch, spec.channels, height, width) if spec.layout == "NCHW" else (batch, height, width, spec.channels)
    results = Session(probe, providers=["CPUExecutionProvider"], weights_dir=weights_dir).run(np.zeros(shape, dtype=spec.dtype), names, strict_batch=False)
    found = {}
    for name, value in results.items():
        elem = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
        dims = tuple(int(d) for d in value.shape)
        if not dims or dims[0] != batch:
            found[name] = TensorInfo(elem, None)
            continue
        if dims:
            dims = (spec.batch, *dims[1:])
        found[name] = TensorInfo(elem, dims)
    return found
