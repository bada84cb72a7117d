"""Reading a model from a path, bytes or a ``ModelProto``, with one-line errors for what is not a model.

Weights in external files (every model over 2 GB, and others saved that way) stay on disk: the graph is
read without them, and they are read from the folder of the model file itself (:func:`weights_folder`),
never from a folder the model names. onnx and onnxruntime both refuse a weight file whose location
leaves that folder. Such a model is never serialised whole, so it is never limited by protobuf's 2 GB.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx.external_data_helper import load_external_data_for_model, uses_external_data

from ..errors import ModelError, first_line


def load_model(src: str | Path | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """Load and check an ONNX model (external weights stay on disk, see the module docstring).

    Raises:
        ModelError: the path does not exist, is not a valid ONNX model, or its external weights are missing.
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
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # protobuf raises several unrelated types for corrupt files
            raise ModelError(f"{path}: not an ONNX model ({first_line(exc)})") from None
    if not model.opset_import or not model.graph.node:
        raise ModelError(f"{where}: not an ONNX model (no graph)")
    try:
        if not external_tensors(model):
            onnx.checker.check_model(model)
        elif not isinstance(src, (onnx.ModelProto, bytes, bytearray)):
            onnx.checker.check_model(str(src))  # by path: checks that the weight files are there, any size
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"{where}: invalid ONNX model ({first_line(exc)})") from None
    return model


def check_rewritten(model: onnx.ModelProto, what: str) -> None:
    """Run onnx's checker on a model we rewrote (``what`` names it in the error): a failure is a bug of ours,
    but the one line says where. A model with external weights is not checked: the checker cannot follow
    them in memory.

    Raises:
        ModelError: ``"{what} does not validate: ..."``.
    """
    if external_tensors(model):
        return
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"{what} does not validate: {str(exc).splitlines()[0]}") from None


def external_tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    """The initializers whose data lives in external files."""
    return [init for init in model.graph.initializer if uses_external_data(init)]


def weights_folder(src: str | Path | bytes | onnx.ModelProto, model: onnx.ModelProto) -> Path | None:
    """The folder the external weights of ``model``, loaded from ``src``, are read from: the folder of the
    model file. ``None`` when its weights are inside it, or when it was given in memory (the caller then
    names the folder)."""
    if isinstance(src, (str, Path)) and external_tensors(model):
        return Path(src).resolve().parent
    return None


def weight_file(folder: Path | None, location: str) -> Path:
    """The external weight file ``location`` of a model whose file is in ``folder``: it must be a regular file
    inside that folder. ``None`` for ``folder`` (a model given in memory) is refused: nothing is read
    relative to the current folder."""
    if folder is None:
        raise ModelError("the model's weights are in external files: open it by its path, so that they are read from its folder")
    folder = folder.resolve()
    path = (folder / location).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise ModelError(f"external weight file {location!r} is not a file in the model's folder {folder}")
    return path


def with_weights(model: onnx.ModelProto, folder: Path | None) -> onnx.ModelProto:
    """A copy of ``model`` with its external weights read into it from ``folder``: ready to be saved anywhere
    or edited. With ``folder`` ``None``, a plain copy."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    if folder is not None:
        try:
            load_external_data_for_model(out, str(folder))
        except (OSError, onnx.checker.ValidationError) as exc:
            raise ModelError(f"cannot read the model's external weights ({first_line(exc)})") from None
    return out


def with_metadata(model: onnx.ModelProto, **entries: str) -> onnx.ModelProto:
    """A copy of ``model`` whose metadata holds ``entries`` (replacing entries of the same keys)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    set_metadata(out, entries)
    return out


def set_metadata(model: onnx.ModelProto, entries: dict[str, str]) -> None:
    """Write ``entries`` into the metadata of ``model`` (one being built), replacing entries of the same keys."""
    kept = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)


def load_with_weights(src: str | Path | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """:func:`load_model`, with any external weights read in from the model file's folder: a model to edit."""
    model = load_model(src)
    return with_weights(model, weights_folder(src, model))


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:
        raise ModelError(f"{where}: not an ONNX model ({first_line(exc)})") from None
    return model
