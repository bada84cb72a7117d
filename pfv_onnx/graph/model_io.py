"""Reading a model from a path, bytes or a ``ModelProto``, with one-line errors for what is not a model."""

from __future__ import annotations

from pathlib import Path

import onnx

from ..errors import ModelError, first_line


def load_model(src: str | Path | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Load and check an ONNX model.

    Raises:
        ModelError: the path does not exist, or is not a valid ONNX model.
    """
    if isinstance(src, onnx.ModelProto):
        model, where = src, "model"
    elif isinstance(src, (bytes, bytearray)):
        where = "model bytes"
        model = _parse(bytes(src), where)
    else:
        path = Path(src)
        where = str(path)
        if not path.is_file():
            raise ModelError(f"{path}: no such model file")
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf raises several unrelated types for corrupt files
            raise ModelError(f"{path}: not an ONNX model ({first_line(exc)})") from None
    if not model.opset_import or not model.graph.node:
        raise ModelError(f"{where}: not an ONNX model (no graph)")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"{where}: invalid ONNX model ({first_line(exc)})") from None
    return model


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:
        raise ModelError(f"{where}: not an ONNX model ({first_line(exc)})") from None
    return model
