"""Saving a real export as a corpus file: the graph kept whole, the large weight tensors emptied.

The corpus tests the graphs that frameworks write (their Pads, squeeze-and-excitation blocks, layouts and
names), not their weights, which are random anyway: emptied, a ResNet-50 export is a few hundred KB.
``tests/helpers/corpus.py`` fills every emptied tensor with seeded random values before a test runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

CORPUS = Path(__file__).resolve().parents[3] / "tests" / "corpus"
STRIPPED = "pfv-onnx corpus: values removed, to be filled with seeded random weights"
# Float tensors with at least this many values are weights; smaller ones (clip bounds, pads, scales,
# shape constants) are kept as exported.
MIN_STRIPPED = 256


def weight_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """The tensors that hold values: initializers, and the values of Constant nodes (paddle2onnx keeps the
    weights there)."""
    constants = [a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"]
    return [*model.graph.initializer, *constants]


def save(model: onnx.ModelProto, name: str, how: str) -> Path:
    """Write ``model`` as ``tests/corpus/<name>.onnx`` with its large float weights emptied, and record
    ``how`` it was made in ``tests/corpus/SOURCES.json``."""
    onnx.checker.check_model(model)
    for tensor in weight_tensors(model):
        if tensor.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16) and int(np.prod(tensor.dims)) >= MIN_STRIPPED:
            numpy_helper.to_array(tensor)  # the values are readable before they go
            dims, kind, tensor_name = list(tensor.dims), tensor.data_type, tensor.name
            tensor.Clear()
            tensor.name, tensor.data_type, tensor.doc_string = tensor_name, kind, STRIPPED
            tensor.dims.extend(dims)
    CORPUS.mkdir(parents=True, exist_ok=True)
    path = CORPUS / f"{name}.onnx"
    onnx.save(model, str(path))
    sources = CORPUS / "SOURCES.json"
    record = json.loads(sources.read_text()) if sources.exists() else {}
    record[name] = how
    sources.write_text(json.dumps(dict(sorted(record.items())), indent=2) + "\n")
    return path
