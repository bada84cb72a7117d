"""The token rule: where a vision transformer keeps its patch tokens, and the grid they make.

A transformer has no pooling or strided convolution after its patch embedding, so the tap rule
(:mod:`pfv_onnx.graph.taps`) finds nothing in it. Its ``F_N`` is the token sequence the head reads:

- The **patch grid** ``h x w`` comes from the patch embedding: the first convolution on the image whose stride
  equals its kernel (``(B, C, h, w)``), or the first reshape of the image into ``h x w`` patches. Where the
  graph has neither, the user gives it (``grid=``, ``--grid H W``).
- The **tokens** are the last tensor in graph order made by a normalisation or a residual ``Add`` (the final
  norm's output: ``LayerNormalization``, or the ``ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add`` it is below opset 17)
  shaped ``(B, N, C)`` with ``N = prefix + h*w`` (a ViT: class, distillation and register tokens make the
  prefix, at most :data:`MAX_PREFIX`), or, after patch merging (Swin), ``(B, h', w', C)`` channels last or
  ``(B, h'*w', C)``, where ``h' = h / 2^k`` and ``w' = w / 2^k``.
- The **prefix tokens** sit where the graph put them: the way back from the tokens to the patch embedding
  passes the ``Concat`` s along the token axis that put them before or after the patches (registers after the
  patches too). Where that way is not plain, they are taken to come first.

:func:`add_token_grid` appends the nodes that cut the patch tokens out and lay them as an NCHW ``(B, C, h, w)``
grid: the ``F_N`` that everything after the tap rule reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import LayerError
from .builder import GraphBuilder
from .constants import attribute
from .shapes import TensorInfo
from .taps import learned_tensors

MAX_PREFIX = 16  # class + distillation + registers; DINOv2 with registers has 5
MAX_MERGES = 5  # patch-merging stages of a Swin-style model
MIN_TOKENS = 4  # a grid of fewer places shows nothing
# Ops whose output may be the token sequence: a norm, or the residual stream.
TOKEN_MAKERS = {"LayerNormalization", "Add", "SkipLayerNormalization", "SimplifiedLayerNormalization", "RMSNormalization"}
GRID_NAME = "pfv_token_grid"
FLOATS = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}


@dataclass(frozen=True)
class TokenGrid:
    """A transformer's patch tokens: ``tokens`` is the tensor, ``channels_last`` marks a ``(B, h, w, C)`` map
    (else ``(B, N, C)`` tokens), ``start`` is the first patch token's position along ``N`` and ``prefix`` the
    count of the other tokens; the grid is ``height x width`` of ``channels``, of ``elem_type``."""

    tokens: str
    channels_last: bool
    start: int
    prefix: int
    height: int
    width: int
    channels: int
    elem_type: int


def patch_embedding(model: onnx.ModelProto, tensors: dict[str, TensorInfo], size: tuple[int, int]) -> tuple[str, int, int] | None:
    """The patch embedding's output and its grid ``(h, w)`` for an input of ``size``: the first Conv that reads
    no learned tensor and whose strides equal its kernel (above 1), or the first Reshape of the image into
    patches, ``(B, C, h, p, w, q)`` or ``(B, h, p, w, q, C)`` with ``h*p`` and ``w*q`` the input's sides; ``None``
    when there is neither with a known shape."""
    learned = learned_tensors(model)
    for node in model.graph.node:
        reads_learned = any(name in learned for name in node.input)
        info = tensors.get(node.output[0]) if node.output else None
        shape = info.shape if info is not None and info.shape is not None else ()
        if node.op_type == "Conv" and not reads_learned and len(shape) == 4 and shape[2] and shape[3]:
            kernel, strides = attribute(node, "kernel_shape"), attribute(node, "strides")
            if kernel and strides and list(kernel) == list(strides) and max(strides) > 1:
                return node.output[0], shape[2], shape[3]
        if node.op_type == "Reshape" and not reads_learned and len(shape) == 6:
            for first in (1, 2):  # channels first, or last
                sides = shape[first : first + 4]
                if None not in sides and (sides[0] * sides[1], sides[2] * sides[3]) == tuple(size) and min(sides[1], sides[3]) > 1:
                    return node.output[0], sides[0], sides[2]
    return None


def token_candidates(model: onnx.ModelProto) -> list[str]:
    """Tensors whose shapes the token rule reads: the outputs of the ops that make tokens, of the
    convolutions, and of the concatenations and their inputs."""
    names: list[str] = []
    for node in model.graph.node:
        if node.op_type in TOKEN_MAKERS or node.op_type in ("Conv", "Reshape"):
            names += node.output[:1]
        elif node.op_type == "Concat":
            names += [*node.input, *node.output[:1]]
    return list(dict.fromkeys(n for n in names if n))


def _grid(model: onnx.ModelProto, tensors: dict[str, TensorInfo], size: tuple[int, int], grid: tuple[int, int] | None) -> tuple[str, int, int] | None:
    """Where the patches come from and their grid: ``grid`` as given (the patches then come from the image),
    or the patch embedding's."""
    if grid is not None:
        return model.graph.input[0].name, grid[0], grid[1]
    return patch_embedding(model, tensors, size)


def find_token_grid(model: onnx.ModelProto, tensors: dict[str, TensorInfo], size: tuple[int, int], grid: tuple[int, int] | None = None) -> TokenGrid | None:
    """The patch tokens the head reads, by the rule of the module docstring, for an input of ``size``;
    ``grid`` ``(h, w)`` where the graph cannot tell it. ``None`` when the graph has no patch embedding or no
    token tensor that fits its grid."""
    embedding = _grid(model, tensors, size, grid)
    if embedding is None:
        return None
    batch = _batch(model)
    for node in reversed(model.graph.node):
        if node.op_type not in TOKEN_MAKERS or not node.output:
            continue
        info = tensors.get(node.output[0])
        if info is None or not info.known or info.elem_type not in FLOATS:
            continue
        found = _tokens_of(model, tensors, node.output[0], info, embedding, batch)
        if found is not None:
            return found
    return None


def token_sequences(model: onnx.ModelProto, tensors: dict[str, TensorInfo], size: tuple[int, int], channels: int, grid: tuple[int, int] | None = None) -> list[str]:
    """The token sequences ``final=`` and ``layers=`` may name, in graph order: the outputs of the ops that make tokens (norms,
    residual sums) shaped as tokens of the patch grid, of ``channels`` (the residual stream's width)."""
    embedding = _grid(model, tensors, size, grid)
    if embedding is None:
        return []
    _, height, width = embedding
    batch, found = _batch(model), []
    for node in model.graph.node:
        info = tensors.get(node.output[0]) if node.op_type in TOKEN_MAKERS and node.output else None
        if info is not None and info.known and info.shape is not None and len(info.shape) == 3 and info.shape[2] == channels and _fits(node.output[0], info, height, width, batch):
            found.append(node.output[0])
    return found


def named_token_grid(model: onnx.ModelProto, tensors: dict[str, TensorInfo], name: str, size: tuple[int, int],
                     grid: tuple[int, int] | None = None) -> TokenGrid | None:
    """The token grid of the tensor ``name`` a user named as ``F_N`` when it is a ``(B, N, C)`` token
    sequence (an earlier block's output, say); ``None`` for a tensor of any other rank.

    Raises:
        LayerError: the tokens do not fit the patch grid, or the graph has no patch embedding to tell it.
    """
    info = tensors.get(name)
    if info is None or info.shape is None or len(info.shape) != 3:
        return None
    embedding = _grid(model, tensors, size, grid)
    if embedding is None:
        raise LayerError(f"{name!r} is a sequence of tokens {list(info.shape)}, and the model has no patch embedding "
                         "(a convolution whose stride is its kernel, or a reshape of the image into patches) to tell their grid: give it with grid=",
                         flags={"grid=": "--grid H W"})
    _, height, width = embedding
    found = _tokens_of(model, tensors, name, info, embedding, _batch(model)) if info.known else None
    if found is None:
        raise LayerError(f"{name!r} holds {info.shape[1]} tokens, which do not make the {height} x {width} patch grid "
                         f"(with at most {MAX_PREFIX} other tokens) or a grid merged from it")
    return found


def _tokens_of(model: onnx.ModelProto, tensors: dict[str, TensorInfo], name: str, info: TensorInfo, embedding: tuple[str, int, int], batch: int | None) -> TokenGrid | None:
    """``name`` as tokens of the patch grid ``embedding`` (``(patches, h, w)``), its other tokens placed; ``None`` when it is not."""
    patches, height, width = embedding
    found = _fits(name, info, height, width, batch)
    return _placed(model, tensors, found, patches) if found is not None and found.prefix else found


def _fits(name: str, info: TensorInfo, height: int, width: int, batch: int | None) -> TokenGrid | None:
    """``name`` as tokens of the ``height x width`` patch grid (or of a grid merged from it), or ``None``."""
    shape = info.shape
    assert shape is not None
    if shape[0] not in (None, batch or 1):  # the batch first: not a (N, B, C) tensor inside an attention
        return None
    grids = [(height >> k, width >> k) for k in range(MAX_MERGES + 1)
             if (height >> k) * (width >> k) >= MIN_TOKENS and (k == 0 or (height % (1 << k) == 0 and width % (1 << k) == 0))]
    if len(shape) == 4:
        if (shape[1], shape[2]) in grids:
            return TokenGrid(name, True, 0, 0, shape[1], shape[2], shape[3], info.elem_type)
        return None
    if len(shape) != 3:
        return None
    count, channels = shape[1], shape[2]
    if 0 <= count - height * width <= MAX_PREFIX:
        return TokenGrid(name, False, count - height * width, count - height * width, height, width, channels, info.elem_type)
    for h, w in grids[1:]:
        if count == h * w:
            return TokenGrid(name, False, 0, 0, h, w, channels, info.elem_type)
    return None


def _placed(model: onnx.ModelProto, tensors: dict[str, TensorInfo], grid: TokenGrid, patches: str) -> TokenGrid:
    """``grid`` with its patch tokens' position, read off the graph: from the tokens back to the patch
    embedding, through the ops that keep the token count (norms, residual sums, position embeddings) and the
    ``Concat`` s along the token axis that put other tokens before or after the patches. Unchanged (prefix
    first) when the way back is not that plain."""
    producer = {out: node for node in model.graph.node for out in node.output}
    made_from = _descendants(model, patches)
    patch_count = grid.height * grid.width
    # Depth first, as a residual sum has two ways back (the stream and the block's own branch).
    stack, seen = [(grid.tokens, 0)], set()
    while stack:
        name, offset = stack.pop()
        count = _token_count(tensors, name)
        if count == patch_count:
            return TokenGrid(grid.tokens, False, offset, grid.prefix, grid.height, grid.width, grid.channels, grid.elem_type)
        node = producer.get(name)
        if node is None or count is None or name in seen:
            continue
        seen.add(name)
        if node.op_type == "Concat" and attribute(node, "axis") in (1, -2):
            sizes = [_token_count(tensors, i) for i in node.input]
            # the input that holds the patches: made from them, and with room for all of them
            held = [k for k, (i, size) in enumerate(zip(node.input, sizes)) if i in made_from and size is not None and size >= patch_count]
            if None not in sizes and len(held) == 1:
                stack.append((node.input[held[0]], offset + sum(sizes[: held[0]])))
            continue
        stack += [(i, offset) for i in reversed(node.input) if i in made_from and _token_count(tensors, i) == count]
    return grid


def _token_count(tensors: dict[str, TensorInfo], name: str) -> int | None:
    """``N`` of a ``(B, N, C)`` tensor, ``None`` for any other."""
    info = tensors.get(name)
    return info.shape[1] if info is not None and info.shape is not None and len(info.shape) == 3 else None


def _batch(model: onnx.ModelProto) -> int | None:
    """The image input's fixed batch, ``None`` when it is left open."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return dims[0].dim_value or None if dims and dims[0].HasField("dim_value") else None


def _descendants(model: onnx.ModelProto, name: str) -> set[str]:
    found = {name}
    for node in model.graph.node:
        if any(i in found for i in node.input):
            found.update(node.output)
    return found


def add_token_grid(model: onnx.ModelProto, grid: TokenGrid) -> tuple[onnx.ModelProto, str, TensorInfo]:
    """A copy of ``model`` that also computes the patch tokens of ``grid`` as an NCHW ``(B, C, h, w)`` tensor;
    return it, the tensor's name and its type and shape (the batch left open)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    model, build = copy, GraphBuilder(copy)
    name = grid.tokens
    if grid.channels_last:
        return model, build.node("Transpose", [name], GRID_NAME, perm=[0, 3, 1, 2]), _info(grid)
    if grid.prefix:
        starts = build.constant(np.array([grid.start], np.int64), f"{GRID_NAME}/starts")
        ends = build.constant(np.array([grid.start + grid.height * grid.width], np.int64), f"{GRID_NAME}/ends")
        axes = build.constant(np.array([1], np.int64), f"{GRID_NAME}/axes")
        name = build.node("Slice", [name, starts, ends, axes], f"{GRID_NAME}/patches")
    shape = build.constant(np.array([0, grid.height, grid.width, grid.channels], np.int64), f"{GRID_NAME}/shape")
    laid = build.node("Reshape", [name, shape], f"{GRID_NAME}/channels_last")
    return model, build.node("Transpose", [laid], GRID_NAME, perm=[0, 3, 1, 2]), _info(grid)


def _info(grid: TokenGrid) -> TensorInfo:
    return TensorInfo(grid.elem_type, (None, grid.channels, grid.height, grid.width))
