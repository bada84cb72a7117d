"""``pfv-onnx inspect``: what PFV sees in a model, printed: its input, preset and class names and where
they come from, the taps each weighting reads, the final layer (a transformer's: its token grid), and the tensors ``--layers`` and
``--final`` accept (feature maps ``(B, C, h, w)`` in graph order)."""

from __future__ import annotations

import argparse

from ..util.console import plural, say
from ..runtime.featurizer import Featurizer
from ..graph import infer_tensors, load_model
from ..graph.tokens import TokenGrid, token_sequences
from ..analyses.in_graph import read_picture_output
from ..options import WEIGHTINGS, Options
from ..core.activation import EARLIER_TAPS

# Feature maps listed without --all: the last ones, where F_N and the taps usually are.
SHOWN = 25


def feature_maps(model) -> list[tuple[str, str, tuple]]:
    """``(tensor, op type, shape)`` of every node output shape inference finds to be 4-D, in graph order."""
    tensors = infer_tensors(model)
    found = []
    for node in model.graph.node:
        for name in node.output:
            info = tensors.get(name)
            if info is not None and info.shape is not None and len(info.shape) == 4:
                found.append((name, node.op_type, info.shape))
    return found


def token_line(tokens: TokenGrid) -> str:
    """Where a transformer's patch tokens are, in words."""
    if tokens.channels_last:
        return f"{tokens.tokens}, a channels-last {tokens.height} x {tokens.width} map of {tokens.channels} channels"
    count = tokens.height * tokens.width
    kept = f"tokens {tokens.start} to {tokens.start + count - 1} of {tokens.tokens} ({tokens.prefix + count} tokens of {tokens.channels} channels)"
    others = f"; {plural(tokens.prefix, 'other token')} (class, distillation, registers) left out" if tokens.prefix else ""
    return f"{tokens.height} x {tokens.width} patches: {kept}{others}"


def run(args: argparse.Namespace, options: Options) -> int:
    featurizer = Featurizer(args.model, options.replace(weighting="paper"))  # the paper's weighting reads every tap
    spec = featurizer.input
    height, width = featurizer.size
    say(f"model: {featurizer.model_path}")
    say(f"input: {spec.name}, {spec.layout}, {spec.channels} channels, {height} x {width}"
        + ("" if spec.size else " (open; fixed with --size)") + (f", fixed batch {spec.batch}" if spec.batch else ""))
    say(f"preset: {featurizer.preset.name} ({featurizer.preset_source}): {featurizer.preset.description}")
    labels = featurizer.labels
    say(f"class names: {plural(len(labels), 'name') + ' from ' + featurizer.labels_source if labels else 'none (give --labels FILE or --labels imagenet)'}")
    picture = read_picture_output(featurizer.tapped.model)
    if picture is not None:
        say(f"PFV picture output: {picture.name}, {picture.describe()}, {picture.weighting} weighting"
            + (" (hierarchical)" if picture.hierarchical else "") + f", basis {picture.basis} (pfv-onnx web draws it in a browser)")
    head = featurizer.head
    say(f"final layer F_N: {featurizer.final}" + (f", {featurizer.final_shape[0]} channels, {featurizer.final_shape[1]} x {featurizer.final_shape[2]}" if featurizer.final_shape else ""))
    tokens = featurizer.tapped.tokens
    if tokens is not None:
        say(f"token grid: {token_line(tokens)}")
        model = featurizer.tapped.model  # pinned to the input size: shape inference reaches the tokens
        sequences = token_sequences(model, infer_tensors(model), featurizer.size, tokens.channels, options.grid)
        say(f"token sequences --final and --layers also accept (the blocks' norms and sums, in graph order): {len(sequences)}")
        for name in sequences[-SHOWN:]:
            say(f"  {name}")
    say("linear head after F_N: " + (f"{head.weight.shape[0]} classes (CAM and the atlas's classes use it)" if head is not None else "none"))
    taps = featurizer.taps
    say(f"earlier taps (the paper's weighting sums them all): {plural(len(taps), 'tap')}")
    for i, tap in enumerate(taps):
        say(f"  {i}: {tap}")
    for weighting in WEIGHTINGS:
        count = EARLIER_TAPS[weighting]
        read = taps if count is None else taps[len(taps) - count :] if count else []
        say(f"weighting {weighting} reads: F_N" + "".join(f", {t}" for t in read))
    maps = feature_maps(load_model(featurizer.model_path) if featurizer.model_path else featurizer.tapped.model)
    shown = maps if args.all else maps[-SHOWN:]
    say(f"feature maps --layers and --final accept: {len(maps)}" + ("" if args.all or len(maps) <= SHOWN else f" (the last {SHOWN}; --all lists every one)"))
    for name, op, shape in shown:
        say(f"  {name}  {op}  " + " x ".join("?" if d is None else str(d) for d in shape[1:]))
    return 0
