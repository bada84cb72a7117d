"""Tapping a model: find its taps (shape inference, then a probe run for what stays unknown) and rewrite it.

This is the one place where the graph surgery meets onnxruntime; :func:`save_model` writes the result to a file
(:func:`pfv_onnx.export` is the public way in).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from ..util import memory
from ..util.console import plural
from ..errors import LayerError, ModelError, PFVError
from ..util.files import atomic_path, check_output_file
from ..graph import (
    InputSpec,
    TappedOutputs,
    TapPlan,
    add_pfv_outputs,
    external_tensors,
    find_taps,
    image_input,
    infer_tensors,
    load_model,
    pin_input_size,
    read_tapped_outputs,
    reduces_spatially,
    shape_candidates,
    weights_folder,
    with_metadata,
    with_weights,
)
from ..images.labels import IMAGENET, read_labels
from ..images.preprocess import MAX_INPUT_PIXELS, MAX_INPUT_SIDE
from ..images.labels import METADATA_KEY as LABELS_KEY
from ..presets import get_preset
from ..graph.tokens import TokenGrid, add_token_grid, find_token_grid, named_token_grid, token_candidates
from . import probe_tensors


def check_input(spec: InputSpec, size: tuple[int, int]) -> None:
    """Refuse an input size over :data:`MAX_INPUT_PIXELS`, and a fixed batch whose input alone would not fit
    in memory, before anything of that size is made."""
    if size[0] * size[1] > MAX_INPUT_PIXELS:
        raise ModelError(f"an input of {size[0]} x {size[1]} pixels is over the limit of {MAX_INPUT_PIXELS:,} pixels ({MAX_INPUT_SIDE} x {MAX_INPUT_SIDE})")
    if spec.batch is not None:
        per_image = spec.channels * size[0] * size[1] * spec.dtype.itemsize
        memory.require(spec.batch * per_image, f"the model's fixed batch of {plural(spec.batch, 'image')}", "the model runs a whole batch at a time")


@dataclass(frozen=True)
class TappedModel:
    """A model rewritten for PFV, what it outputs, how to feed it, and the folder of its external weights
    (``None`` when they are inside it)."""

    model: onnx.ModelProto
    outputs: TappedOutputs
    input: InputSpec
    weights_dir: Path | None = None
    tokens: TokenGrid | None = None  # a transformer's patch tokens, when F_N is their grid


def tap_model(
    src: str | Path | bytes | onnx.ModelProto,
    layers: list[str] | None = None,
    final: str | None = None,
    keep_logits: bool = True,
    activation_in_graph: bool = True,
    *,
    size: tuple[int, int] | None = None,
    weights_dir: Path | None = None,
    earlier: int | None = None,
    statistics: bool = False,
    grid: tuple[int, int] | None = None,
    checked: bool = False,
) -> TappedModel:
    """Load ``src`` and rewrite it to output what PFV needs. A model tapped before is used as it is.

    Args:
        layers, final: tensor names to tap instead of the automatic rule (see :func:`pfv_onnx.graph.find_taps`).
        keep_logits: keep the model's own outputs (needed for predictions).
        activation_in_graph: also compute ``A^b`` at the input size inside the graph (only possible when the
            input size is fixed, by the graph or by ``size``).
        size: ``(H, W)`` to fix the input size of a model that leaves it open.
        weights_dir: the folder of the external weights of a model given in memory (for a path, the
            model file's own folder).
        earlier: keep only this many of the last earlier taps the rule finds (``None``: all); layers named
            in ``layers`` are all kept.
        statistics: also output ``F_N``'s statistics for the decomposition (:func:`pfv_onnx.graph.add_pfv_outputs`).
        grid: ``(h, w)`` of a transformer's patch tokens, where the graph does not tell it (:mod:`pfv_onnx.graph.tokens`).
        checked: ``src`` is a ``ModelProto`` :func:`~pfv_onnx.graph.model_io.load_model` loaded and checked
            already (checking serialises the whole model: a large one costs seconds a time).
    """
    model = src if checked and isinstance(src, onnx.ModelProto) else load_model(src)
    weights_dir = weights_dir or weights_folder(src, model)
    spec = image_input(model)
    if size is not None:
        model, spec = pin_input_size(model, spec, size)
    check_input(spec, spec.size_or_default)  # before the shape probe makes an input of that size
    existing = read_tapped_outputs(model)
    if existing is not None:
        return _tapped_before(model, existing, spec, weights_dir, bool(layers or final), earlier)
    tensors = infer_tensors(model)
    produced = {out for node in model.graph.node for out in node.output}
    wanted = shape_candidates(model) + list(layers or []) + ([final] if final else [])
    unknown = [name for name in dict.fromkeys(wanted) if name in produced and not (name in tensors and tensors[name].known)]
    if unknown:
        tensors.update(probe_tensors(model, unknown, spec, tensors, weights_dir))
    model, layers, final, grids = _token_grids(model, tensors, spec, weights_dir, layers, final, grid)
    plan = find_taps(model, tensors, layers, final)
    tokens = grids.get(plan.final.name)
    if tokens is not None:
        # A token's response is its length (pfv_onnx.core.activation.final_response), which F_N's channel
        # sums in the graph are not: they are left to the core.
        activation_in_graph = statistics = False
    if earlier is not None and not layers:
        plan = TapPlan(plan.layers[len(plan.layers) - earlier :] if earlier else (), plan.final)
    in_graph = activation_in_graph and spec.size is not None
    tapped = add_pfv_outputs(model, plan, spec, keep_logits=keep_logits, activation_in_graph=in_graph, statistics=statistics, token_grids=set(grids))
    outputs = read_tapped_outputs(tapped)
    assert outputs is not None
    return TappedModel(tapped, outputs, spec, weights_dir, tokens)


def _tapped_before(model: onnx.ModelProto, existing: TappedOutputs, spec: InputSpec, weights_dir: Path | None, named: bool, earlier: int | None) -> TappedModel:
    """A model tapped before, used as it is (``named``: layers were named, which it cannot take), reading only
    the ``earlier`` last taps' maps (the others stay in onnxruntime)."""
    if named:
        raise LayerError("this model was tapped already; give the original model to choose other layers")
    if earlier is not None:
        keep = slice(len(existing.taps) - earlier, None) if earlier else slice(0, 0)
        existing = replace(existing, taps=existing.taps[keep], maps=existing.maps[keep])
    return TappedModel(model, existing, spec, weights_dir)


def _token_grids(
    model: onnx.ModelProto, tensors: dict, spec: InputSpec, weights_dir: Path | None, layers: list[str] | None, final: str | None, grid: tuple[int, int] | None
) -> tuple[onnx.ModelProto, list[str] | None, str | None, dict[str, TokenGrid]]:
    """A transformer's patch tokens laid out as grids (:mod:`pfv_onnx.graph.tokens`): ``F_N`` found by the token
    rule where the tap rule finds nothing or ``grid`` is given, and each ``(B, N, C)`` token sequence named in
    ``layers`` or ``final``. Returns the model with the grids' nodes, ``layers`` and ``final`` with each sequence
    replaced by its grid, and the grids by their names (``tensors`` gains their shapes)."""

    def is_tokens(name: str) -> bool:
        info = tensors.get(name)
        return info is not None and info.shape is not None and len(info.shape) == 3

    named = [name for name in [*(layers or []), *([final] if final else [])] if is_tokens(name)]
    automatic = not layers and not final and (grid is not None or not reduces_spatially(model, tensors))
    if not named and not automatic:
        return model, layers, final, {}
    unknown = [name for name in token_candidates(model) if not (name in tensors and tensors[name].known)]
    if unknown:
        tensors.update(probe_tensors(model, unknown, spec, tensors, weights_dir))
    size = spec.size_or_default
    found = {name: named_token_grid(model, tensors, name, size, grid) for name in dict.fromkeys(named)}
    if automatic:
        found[""] = find_token_grid(model, tensors, size, grid)
        if found[""] is None:
            if grid is not None:
                raise LayerError(f"grid= {grid[0]} x {grid[1]}: no sequence of tokens in the model makes that grid", flags={"grid=": "--grid"})
            return model, layers, final, {}
    grids, renamed = {}, {}
    for name, tokens in found.items():
        assert tokens is not None
        model, renamed[name], info = add_token_grid(model, tokens)
        tensors[renamed[name]], grids[renamed[name]] = info, tokens
    new_layers = [renamed.get(name, name) for name in layers] if layers else layers
    return model, new_layers, renamed.get(final or "", final), grids


def _class_count(model: onnx.ModelProto, outputs: Sequence[str]) -> int | None:
    """``K`` of the first of ``outputs`` shaped like class scores, ``(B, K)`` or ``(B, K, 1, 1)``, when the
    graph states it."""
    for value in model.graph.output:
        if value.name in outputs:
            dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
            if (len(dims) == 2 or (len(dims) == 4 and dims[2:] == [1, 1])) and dims[1]:
                return dims[1]
    return None


def save_model(
    model: onnx.ModelProto, dst: str | Path, tapped: TappedModel, preset: str | None = None, labels: str | Sequence[str] | None = None
) -> Path:
    """Write ``model`` (``tapped``'s model, or an edit of it) to ``dst`` with ``preset`` and ``labels`` in its
    metadata; returns the path written.

    Written atomically: a failure leaves no file behind. A model whose weights were in external files is
    written the same way: ``DST`` and ``DST.data`` beside it.
    """
    dst = check_output_file(dst, overwrite=True)
    model = with_weights(model, tapped.weights_dir)
    entries = {}
    if preset is not None:
        entries["preset"] = get_preset(preset).name
    if labels is not None:
        names = read_labels(labels) if isinstance(labels, (str, Path)) else [str(name) for name in labels]
        if any("\n" in name or "\r" in name for name in names):  # the entry holds one name per line
            raise PFVError("a class name holds a line break")
        classes = _class_count(model, tapped.outputs.original)
        if classes is not None and classes != len(names):
            raise PFVError(f"{len(names)} class names for a model that gives {classes} classes")
        entries[LABELS_KEY] = IMAGENET if str(labels) == IMAGENET else "\n".join(names)
    model = with_metadata(model, **entries) if entries else model
    if not external_tensors(tapped.model):
        with atomic_path(dst) as tmp:
            onnx.save_model(model, str(tmp))
        return dst
    # The weights were in external files: so are the exported ones, in DST.data beside DST. Both are written
    # in a new folder beside DST and moved into place whole, the weights first: an existing DST.data is
    # replaced, never appended to, and stays as it was when the export fails.
    data = dst.with_name(dst.name + ".data")
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=f".{dst.name}.") as work:
        staged = Path(work) / dst.name
        onnx.save_model(model, str(staged), save_as_external_data=True, all_tensors_to_one_file=True, location=data.name)
        shutil.copymode(staged, staged.with_name(data.name))  # the weights get the permissions the model file got
        os.replace(staged.with_name(data.name), data)
        os.replace(staged, dst)
    return dst
