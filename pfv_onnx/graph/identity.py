"""What identifies a model: SHA-256 digests of what is run, never of anything a model says about itself.

``file_sha256``      the model file's bytes, then those of each external weight file it reads, so weights
                     swapped beside the model change it (``summary.json``'s ``sha256``).
``features_sha256``  the part of the graph that computes the tapped tensors and ``F_N``: its operators, their
                     attributes, wiring and weights. A fitted basis is bound to it: it fits exactly the
                     models that compute the same features, such as the model itself and its tapped export,
                     and no model with other weights, whatever its metadata claims.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import onnx
from onnx import numpy_helper
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from .model_io import weight_file
from .rewrite import needed_nodes

_BLOCK = 1 << 20


def file_sha256(path: str | Path, model: onnx.ModelProto, weights_dir: Path | None) -> str:
    """SHA-256 of the model file at ``path`` followed by each external weight file of ``model`` (read from
    ``weights_dir``), in the order the model first names them."""
    digest = hashlib.sha256()
    _update_from_file(digest, Path(path))
    locations = dict.fromkeys(ExternalDataInfo(t).location for t in model.graph.initializer if uses_external_data(t))
    for location in locations:
        _update_from_file(digest, weight_file(weights_dir, location))
    return digest.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """SHA-256 of a model given in memory (its serialised bytes)."""
    return hashlib.sha256(data).hexdigest()


def features_sha256(model: onnx.ModelProto, weights_dir: Path | None, tensors: Iterable[str]) -> str:
    """SHA-256 of the subgraph of ``model`` that computes ``tensors`` (the taps and ``F_N``): the opsets, then
    for each node it runs, in graph order, its operator, inputs, outputs and attributes (node names and
    documentation left out), then each weight it reads, by name, with its type, shape and values."""
    graph = model.graph
    nodes, read = needed_nodes(graph, set(tensors))
    digest = hashlib.sha256()
    for opset in sorted((o.domain, o.version) for o in model.opset_import):
        _update_text(digest, "opset", *map(str, opset))
    for value in graph.input:
        if value.name in read:
            _update_text(digest, "input", value.name, str(value.type.tensor_type.elem_type))
    called = {(n.domain, n.op_type) for n in nodes}
    for function in sorted(model.functions, key=lambda f: (f.domain, f.name)):  # the operators a model defines itself
        if (function.domain, function.name) in called:
            digest.update(function.SerializeToString(deterministic=True))
    for node in nodes:
        _update_text(digest, "node", node.domain, node.op_type, *node.input, "->", *node.output)
        for attribute in sorted(node.attribute, key=lambda a: a.name):
            digest.update(attribute.SerializeToString(deterministic=True))
            for tensor in _subgraph_weights(attribute):  # the serialised attribute holds only their file's name
                _update_tensor(digest, tensor, weights_dir)
    for tensor in sorted((t for t in graph.initializer if t.name in read), key=lambda t: t.name):
        _update_tensor(digest, tensor, weights_dir)
    for sparse in sorted((s for s in graph.sparse_initializer if s.values.name in read), key=lambda s: s.values.name):
        _update_text(digest, "sparse", *map(str, sparse.dims))
        _update_tensor(digest, sparse.values, weights_dir)
        _update_tensor(digest, sparse.indices, weights_dir)
    return digest.hexdigest()


def _update_tensor(digest, tensor: onnx.TensorProto, weights_dir: Path | None) -> None:
    """A weight: its name, type, shape and values (read from its file when external)."""
    _update_text(digest, "weight", tensor.name, str(tensor.data_type), *map(str, tensor.dims))
    if uses_external_data(tensor):
        info = ExternalDataInfo(tensor)
        _update_from_file(digest, weight_file(weights_dir, info.location), info.offset or 0, info.length)
    else:
        digest.update(numpy_helper.to_array(tensor).tobytes())


def _subgraph_weights(attribute: onnx.AttributeProto) -> list[onnx.TensorProto]:
    """The external weights of the subgraphs (If, Loop, Scan bodies) an attribute holds, at any depth."""
    graphs = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else list(attribute.graphs)
    found = []
    for graph in graphs:
        found += [t for t in graph.initializer if uses_external_data(t)]
        for node in graph.node:
            for inner in node.attribute:
                found += _subgraph_weights(inner)
    return found


def _update_text(digest, *parts: str) -> None:
    digest.update("\0".join(parts).encode("utf-8") + b"\1")


def _update_from_file(digest, path: Path, offset: int = 0, length: int | None = None) -> None:
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left is None or left > 0:
            block = f.read(_BLOCK if left is None else min(_BLOCK, left))
            if not block:
                break
            digest.update(block)
            if left is not None:
                left -= len(block)
