"""Tapping a model: find its taps (shape inference, then a probe run for what stays unknown) and rewrite it.

This is the one place where the graph surgery meets onnxruntime; :func:`export` writes the result to a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from .errors import LayerError, PFVError
from .files import atomic_path
from .graph import (
    InputSpec,
    TappedOutputs,
    add_pfv_outputs,
    find_taps,
    image_input,
    infer_tensors,
    load_model,
    read_tapped_outputs,
    shape_candidates,
)
from .runtime import probe_tensors


@dataclass(frozen=True)
class TappedModel:
    """A model rewritten for PFV, what it outputs, and how to feed it."""

    model: onnx.ModelProto
    outputs: TappedOutputs
    input: InputSpec


def tap_model(
    src: str | Path | bytes | onnx.ModelProto,
    layers: list[str] | None = None,
    final: str | None = None,
    keep_logits: bool = True,
    activation_in_graph: bool = True,
) -> TappedModel:
    """Load ``src`` and rewrite it to output what PFV needs. A model tapped before is used as it is.

    Args:
        layers, final: tensor names to tap instead of the automatic rule (see :func:`pfv_onnx.graph.find_taps`).
        keep_logits: keep the model's own outputs (needed for predictions).
        activation_in_graph: also compute ``A^b`` at the input size inside the graph.
    """
    model = load_model(src)
    spec = image_input(model)
    existing = read_tapped_outputs(model)
    if existing is not None:
        if layers or final:
            raise LayerError("this model was tapped already; give the original model to choose other layers")
        return TappedModel(model, existing, spec)
    tensors = infer_tensors(model)
    produced = {out for node in model.graph.node for out in node.output}
    wanted = shape_candidates(model) + list(layers or []) + ([final] if final else [])
    unknown = [name for name in dict.fromkeys(wanted) if name in produced and not (name in tensors and tensors[name].known)]
    if unknown:
        tensors.update(probe_tensors(model, unknown, spec, tensors))
    plan = find_taps(model, tensors, layers, final)
    tapped = add_pfv_outputs(model, plan, spec, keep_logits=keep_logits, activation_in_graph=activation_in_graph)
    outputs = read_tapped_outputs(tapped)
    assert outputs is not None
    return TappedModel(tapped, outputs, spec)


def export(
    src: str | Path | bytes | onnx.ModelProto,
    dst: str | Path,
    layers: list[str] | None = None,
    final: str | None = None,
    keep_logits: bool = True,
) -> TappedOutputs:
    """Write the tapped model of ``src`` to ``dst`` and return what it outputs.

    The file outputs ``F_N``, the channel-sum map of every earlier tap, ``A^b`` ``(B, 1, H0, W0)`` and,
    with ``keep_logits``, the model's own outputs unchanged. It is written atomically: a failure leaves
    no file behind.
    """
    tapped = tap_model(src, layers, final, keep_logits, activation_in_graph=True)
    dst = Path(dst)
    if dst.is_dir():
        raise PFVError(f"{dst}: is a folder; give the path of the .onnx file to write")
    if not dst.parent.is_dir():
        raise PFVError(f"{dst.parent}: no such folder")
    with atomic_path(dst) as tmp:
        onnx.save(tapped.model, str(tmp))
    return tapped.outputs
