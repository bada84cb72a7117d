"""The corpus of real exports (tests/corpus/, made by models/export/corpus/): loaded with seeded random
values in the weight tensors the export scripts emptied."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
STRIPPED = "pfv-onnx corpus: values removed, to be filled with seeded random weights"
# BatchNormalization's inputs 1-4: scale, bias, mean, variance.
NORM_ROLES = {1: "scale", 2: "bias", 3: "mean", 4: "variance"}


def load(name: str, seed: int = 0) -> onnx.ModelProto:
    """``tests/corpus/<name>.onnx`` with each emptied tensor filled from a generator seeded by the tensor's
    name: weights scaled by ``1 / sqrt(fan_in)``, so that activations stay in range through a deep random
    network; a BatchNormalization's variances positive and its scales near 1."""
    model = onnx.load(str(CORPUS / f"{name}.onnx"))
    roles = {name: NORM_ROLES[i] for n in model.graph.node if n.op_type == "BatchNormalization" for i, name in enumerate(n.input) if i in NORM_ROLES}
    constants = {n.output[0]: a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"}
    for key, tensor in [*((t.name, t) for t in model.graph.initializer), *constants.items()]:
        if tensor.doc_string != STRIPPED:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        values = _values(rng, tuple(tensor.dims), roles.get(key))
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
        tensor.CopyFrom(numpy_helper.from_array(values.astype(dtype), tensor.name or None))
    onnx.checker.check_model(model)
    return model


def _values(rng: np.random.Generator, dims: tuple[int, ...], role: str | None) -> np.ndarray:
    if role == "variance":
        return rng.uniform(0.5, 1.5, dims)
    if role == "scale":
        return 1.0 + 0.1 * rng.standard_normal(dims)
    if role in ("bias", "mean"):
        return 0.1 * rng.standard_normal(dims)
    fan_in = int(np.prod(dims[1:])) if len(dims) == 4 else min(dims) if len(dims) == 2 else max(dims)
    return rng.standard_normal(dims) / np.sqrt(max(fan_in, 1))
