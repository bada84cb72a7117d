"""Graph edits: expose the taps PFV needs, with their reductions computed inside the graph.

For every tap ``l < N`` the rewritten model outputs the float32 channel-sum map ``A_l`` ``(B, 1, h_l, w_l)``,
computed as a 1x1 ``Conv`` with all-ones weights: the same numbers as ``ReduceSum`` over axis 1, but run by
onnxruntime's blocked-layout convolution kernels on the tap as it is, where a ``ReduceSum`` makes it
convert the tap back to plain NCHW first. It also outputs ``F_N`` itself and, optionally, the total
activation map ``A^b``
``(B, 1, H0, W0)``: each ``A_l`` upsampled by two ``MatMul`` with fixed bilinear interpolation matrices
(half-pixel centres, the same numbers as ONNX ``Resize`` linear/half_pixel and OpenCV ``INTER_LINEAR``,
in every opset and for any batch size), then a ``Sum``. What the rewrite added is recorded in the model's
metadata under :data:`METADATA_KEY`, so a saved tapped model describes itself.
"""

from __future__ import annotations

from collections.abc import Collection

import json
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..errors import ModelError
from .builder import GraphBuilder
from .constants import constant_array
from .inputs import InputSpec
from .model_io import check_rewritten, set_metadata
from .taps import Tap, TapPlan

METADATA_KEY = "pfv_onnx"
FORMAT_VERSION = 1
ACTIVATION = "pfv_activation"
# What F_N's statistics in the graph are, in order (see add_pfv_outputs).
STATISTICS = (
    "pfv_final_sum",  # (B, 1, h, w) float32: F_N's channel sum
    "pfv_channel_sums",  # (B, C) float32: each image's sum of F_N over its pixels
    "pfv_scatter",  # (1, C, C) float32: sum over the run's pixels of (F_N - m)(F_N - m)^T, m the run's mean
)


@dataclass(frozen=True)
class TappedOutputs:
    """Output names of a tapped model: ``maps`` (one per tap ``l < N``), ``final`` (``F_N``),
    ``activation`` (``A^b`` or ``None``), ``original`` (the model's own outputs kept) and ``picture`` (the
    PFV picture of a model exported with a fitted basis, :mod:`pfv_onnx.analyses.in_graph`, or ``None``) and
    ``statistics`` (with ``statistics``: the outputs :data:`STATISTICS` describes, or ``None``)."""

    taps: tuple[str, ...]
    final: str
    maps: tuple[str, ...]
    activation: str | None
    original: tuple[str, ...]
    picture: str | None = None
    statistics: tuple[str, str, str] | None = None
    tokens: bool = False  # F_N is a transformer's token grid (pfv_onnx.graph.tokens)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": FORMAT_VERSION,
                "taps": list(self.taps),
                "final": self.final,
                "maps": list(self.maps),
                "activation": self.activation,
                "original": list(self.original),
                **({"picture": self.picture} if self.picture else {}),
                **({"statistics": list(self.statistics)} if self.statistics else {}),
                **({"tokens": True} if self.tokens else {}),
            }
        )


def read_tapped_outputs(model: onnx.ModelProto) -> TappedOutputs | None:
    """The :class:`TappedOutputs` recorded by :func:`add_pfv_outputs`, or ``None`` for an untapped model."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                data = json.loads(prop.value)
                if data.get("version") != FORMAT_VERSION:
                    raise ValueError(f"format version {data.get('version')}")
                if not all(isinstance(data[key], list) for key in ("taps", "maps", "original")):
                    raise ValueError("taps, maps and original outputs must be lists")
                tapped = TappedOutputs(tuple(data["taps"]), data["final"], tuple(data["maps"]), data["activation"], tuple(data["original"]), data.get("picture"),
                                       tuple(data["statistics"]) if data.get("statistics") else None, data.get("tokens") is True)
                if tapped.statistics is not None and len(tapped.statistics) != 3:
                    raise ValueError("statistics must name three outputs")
                names = [*tapped.taps, tapped.final, *tapped.maps, *tapped.original] + [name for name in (tapped.activation, tapped.picture, *(tapped.statistics or ())) if name]
                if not all(isinstance(name, str) and name for name in names) or len(tapped.maps) != len(tapped.taps):
                    raise ValueError("names that are not strings, or not one map per tap")
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:  # RecursionError: JSON nested too deeply
                raise ModelError(f"the model's {METADATA_KEY} metadata is unreadable ({exc})") from None
            produced = {o.name for o in model.graph.output}
            missing = [name for name in (tapped.final, *tapped.maps, tapped.activation, tapped.picture, *(tapped.statistics or ()), *tapped.original) if name and name not in produced]
            if missing:
                raise ModelError(f"the model's {METADATA_KEY} metadata names {missing[0]!r}, which is not one of its outputs")
            return tapped
    return None


def add_outputs(model: onnx.ModelProto, names: list[str], elem_types: dict[str, int] | None = None) -> onnx.ModelProto:
    """A copy of ``model`` that also outputs the tensors ``names``, typed where ``elem_types`` knows the
    type and untyped otherwise (onnxruntime then takes the type the graph gives)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    existing = {o.name for o in out.graph.output}
    for name in names:
        if name not in existing:
            elem = (elem_types or {}).get(name)
            value = helper.make_tensor_value_info(name, elem, None) if elem else onnx.ValueInfoProto(name=name)
            out.graph.output.append(value)
            existing.add(name)
    return out


def add_pfv_outputs(
    model: onnx.ModelProto,
    plan: TapPlan,
    spec: InputSpec,
    keep_logits: bool = True,
    activation_in_graph: bool = True,
    statistics: bool = False,
    token_grids: Collection[str] = (),
) -> onnx.ModelProto:
    """A copy of ``model`` rewritten to output what PFV needs (see the module docstring).

    Args:
        plan: the taps (:func:`pfv_onnx.graph.find_taps`).
        spec: the image input; its size is ``(H0, W0)`` of ``A^b``.
        keep_logits: keep the model's own outputs; without them the head is pruned away.
        activation_in_graph: also output ``A^b`` at the input size.
        statistics: also output what the decomposition needs of ``F_N`` (:data:`STATISTICS`), so that on an
            accelerator ``F_N`` itself can stay there: its channel sum, each image's channel sums, and the
            ``C x C`` scatter of its pixels about their mean over the run (a leading axis of 1, not the
            batch; centred on the device, where a GPU's float32 or TF32 products would lose the small
            variances beside large means).
        token_grids: the taps that are a transformer's token grids (:func:`pfv_onnx.graph.tokens.add_token_grid`):
            an earlier one's map is its tokens' length, not their channel sum; ``F_N`` being one is recorded
            for the readers of the outputs.
    """
    if activation_in_graph and spec.size is None:
        raise ModelError("the model's input size is not fixed, so A^b cannot be sized inside the graph")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    build = GraphBuilder(out)
    original = [o.name for o in graph.output] if keep_logits else []
    if not keep_logits:
        del graph.output[:]
    first_added = len(graph.node)

    maps = [(token_length if tap.name in token_grids else channel_sum)(build, tap, f"pfv_map_{i}") for i, tap in enumerate(plan.layers)]
    activation = _total_activation(build, plan, maps, spec.size) if activation_in_graph and spec.size is not None else None

    batch = spec.batch if spec.batch is not None else _batch_param(model, spec.name)
    added = _statistics(build, plan.final, batch) if statistics else None
    if plan.final.name not in original:
        f = plan.final
        graph.output.append(helper.make_tensor_value_info(f.name, f.elem_type, [batch, f.channels, f.height, f.width]))
    for tap, name in zip(plan.layers, maps):
        graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, 1, tap.height, tap.width]))
    if activation is not None:
        assert spec.size is not None
        graph.output.append(helper.make_tensor_value_info(activation, TensorProto.FLOAT, [batch, 1, *spec.size]))

    _schedule_early(graph, first_added)
    if not keep_logits:
        _prune(graph)
    tapped = TappedOutputs(taps=tuple(plan.layer_names), final=plan.final.name, maps=tuple(maps), activation=activation,
                           original=tuple(original), statistics=added, tokens=plan.final.name in token_grids)
    set_metadata(out, {METADATA_KEY: tapped.to_json()})
    check_rewritten(out, "the tapped model")
    return out


def _total_activation(build: GraphBuilder, plan: TapPlan, maps: list[str], size: tuple[int, int]) -> str:
    """Append eq. 2's ``A^b`` ``(B, 1, H0, W0)``: the earlier taps' channel-sum ``maps`` upsampled to ``size``
    and added. With no earlier layer, F_N's own channel sum stands in for them (as in the core)."""
    sources = list(zip(plan.layers, maps)) or [(plan.final, channel_sum(build, plan.final, "pfv/final_sum"))]
    upsampled = [build.resize(name, (tap.height, tap.width), size, f"pfv/upsample_{i}") for i, (tap, name) in enumerate(sources)]
    return build.node("Sum", upsampled, ACTIVATION)


def channel_sum(build: GraphBuilder, tap: Tap, wanted: str) -> str:
    """Append ``Conv(tap, ones(1, C, 1, 1))``: the ``(B, 1, h, w)`` float32 channel sum of a tap.

    A float16 tap is cast to float32 first: a sum over hundreds of channels overflows float16. A tap that
    a per-tensor DequantizeLinear makes (a quantised QDQ model) is summed in the quantised domain.
    """
    quantised = _quantised_sum(build, tap, wanted)
    if quantised is not None:
        return quantised
    source = build.as_float(tap.name, tap.elem_type, f"{wanted}/float")
    ones = build.constant(np.ones((1, tap.channels, 1, 1), dtype=np.float32), f"{wanted}/ones")
    return build.node("Conv", [source, ones], wanted, kernel_shape=[1, 1])


def token_length(build: GraphBuilder, tap: Tap, wanted: str) -> str:
    """Append the ``(B, 1, h, w)`` float32 length of each token of a token grid ``tap`` (the square root of
    the channel sum of its square)."""
    source = build.as_float(tap.name, tap.elem_type, f"{wanted}/float")
    squares = build.node("Mul", [source, source], f"{wanted}/squares")
    summed = channel_sum(build, Tap(squares, tap.channels, tap.height, tap.width, TensorProto.FLOAT), f"{wanted}/square_sum")
    return build.node("Sqrt", [summed], wanted)


def _statistics(build: GraphBuilder, final: Tap, batch: int | str) -> tuple[str, str, str]:
    """Append the three :data:`STATISTICS` of ``F_N`` and declare them as outputs."""
    graph = build.graph
    channels, pixels = final.channels, final.height * final.width
    final_sum = channel_sum(build, final, STATISTICS[0])
    source = build.as_float(final.name, final.elem_type, "pfv/statistics/float")
    # GlobalAveragePool, not ReduceSum: its axes moved from an attribute to an input in opset 13.
    means = build.node("GlobalAveragePool", [source], "pfv/statistics/means")
    sums = build.node("Flatten", [build.node("Mul", [means, build.constant(np.float32(pixels), "pfv/statistics/pixels")], "pfv/statistics/sums")],
                      STATISTICS[1], axis=1)
    by_channel = build.node("Transpose", [source], "pfv/statistics/by_channel", perm=[1, 0, 2, 3])
    rows = build.node("Reshape", [by_channel, build.constant(np.array([1, channels, -1], np.int64), "pfv/statistics/shape")], "pfv/statistics/rows")
    centred = build.node("Sub", [rows, build.reduce("ReduceMean", rows, [2], "pfv/statistics/mean")], "pfv/statistics/centred")
    scatter = build.node("MatMul", [centred, build.node("Transpose", [centred], "pfv/statistics/columns", perm=[0, 2, 1])], STATISTICS[2])
    graph.output.extend([
        helper.make_tensor_value_info(final_sum, TensorProto.FLOAT, [batch, 1, final.height, final.width]),
        helper.make_tensor_value_info(sums, TensorProto.FLOAT, [batch, channels]),
        helper.make_tensor_value_info(scatter, TensorProto.FLOAT, [1, channels, channels]),
    ])
    return final_sum, sums, scatter


def _quantised_sum(build: GraphBuilder, tap: Tap, wanted: str) -> str | None:
    """For a tap ``DequantizeLinear(q, scale, zero_point)`` with one scale and zero point, append
    ``scale * ConvInteger(q, ones, zero_point)``: the same sum, ``scale * sum_c (q_c - zero_point)``, read
    from the 8-bit tensor. Summing the dequantised tap instead would make onnxruntime compute the float
    tensor that its fused quantised convolutions never make. ``None`` for any other tap."""
    node = build.producer.get(tap.name)
    if node is None or node.op_type != "DequantizeLinear" or len(node.input) < 3 or node.domain not in ("", "ai.onnx"):
        return None
    scale, zero_point = (build.constants.get(name) for name in node.input[1:3])
    if scale is None or zero_point is None or np.size(constant_array(scale)) != 1:
        return None
    kind = zero_point.data_type
    if kind not in (TensorProto.UINT8, TensorProto.INT8) or np.size(constant_array(zero_point)) != 1:
        return None
    dtype = np.uint8 if kind == TensorProto.UINT8 else np.int8
    ones = build.constant(np.ones((1, tap.channels, 1, 1), dtype=dtype), f"{wanted}/ones")
    point = build.constant(constant_array(zero_point).reshape(()).astype(dtype), f"{wanted}/zero_point")
    counts = build.node("ConvInteger", [node.input[0], ones, point], f"{wanted}/integer", kernel_shape=[1, 1])
    step = build.constant(constant_array(scale).reshape(()).astype(np.float32), f"{wanted}/scale")
    return build.node("Mul", [build.node("Cast", [counts], f"{wanted}/float", to=TensorProto.FLOAT), step], wanted)


def _schedule_early(graph: onnx.GraphProto, first_added: int) -> None:
    """Move each node from ``first_added`` on to just after the node that makes its last input.

    onnxruntime runs nodes in the order of the graph where the dependencies allow: a channel sum placed
    right after its tap reads the tap while it is still in the cache (run in chunks of a few images, the
    sums of MobileNetV2 cost half as much as at the end of the graph).
    """
    nodes = list(graph.node)
    original, added = nodes[:first_added], nodes[first_added:]
    ready = {""} | {v.name for v in graph.input} | {t.name for t in graph.initializer}
    ordered: list[onnx.NodeProto] = []
    waiting = list(added)

    def release() -> None:
        progress = True
        while progress:
            progress = False
            for node in list(waiting):
                if all(name in ready for name in node.input):
                    ordered.append(node)
                    ready.update(node.output)
                    waiting.remove(node)
                    progress = True

    release()
    for node in original:
        ordered.append(node)
        ready.update(node.output)
        release()
    ordered += waiting
    del graph.node[:]
    graph.node.extend(ordered)


def _batch_param(model: onnx.ModelProto, input_name: str) -> str:
    """The symbolic batch dimension's name of the image input, so the new outputs share it."""
    value = next(v for v in model.graph.input if v.name == input_name)
    return value.type.tensor_type.shape.dim[0].dim_param or "batch"


def _subgraph_inputs(node: onnx.NodeProto) -> set[str]:
    """Outer-scope names a node's subgraphs (If/Loop/Scan bodies) read."""
    names: set[str] = set()
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for sub in graphs:
            inner = {o for n in sub.node for o in n.output} | {i.name for i in sub.input} | {i.name for i in sub.initializer}
            for n in sub.node:
                names.update(i for i in n.input if i and i not in inner)
                names.update(i for i in _subgraph_inputs(n) if i not in inner)
    return names


def needed_nodes(graph: onnx.GraphProto, names: set[str]) -> tuple[list[onnx.NodeProto], set[str]]:
    """The nodes that computing the tensors ``names`` runs, in graph order, and every tensor name they read
    (``names`` included)."""
    needed = set(names)
    kept = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
            needed.update(_subgraph_inputs(node))
    kept.reverse()
    return kept, needed


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes, initializers and value infos that no graph output needs."""
    kept, needed = needed_nodes(graph, {o.name for o in graph.output})
    del graph.node[:]
    graph.node.extend(kept)
    dropped = {i.name for i in graph.initializer if i.name not in needed}
    initializers = [i for i in graph.initializer if i.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    # IR version 3 graphs also list initializers among the inputs: those of dropped ones must go too.
    inputs = [v for v in graph.input if v.name not in dropped]
    del graph.input[:]
    graph.input.extend(inputs)
    infos = [v for v in graph.value_info if v.name in needed]
    del graph.value_info[:]
    graph.value_info.extend(infos)
