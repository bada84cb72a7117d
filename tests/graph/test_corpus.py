"""Real exports, the way each framework's users make them (tests/corpus/, from models/export/corpus/):
the taps the rule names, the original outputs unchanged by tapping, and PFV on them."""

from __future__ import annotations

import json

from helpers import corpus
import numpy as np
import onnx
import pytest

from pfv_onnx import PFV, LayerError, tap_model
from pfv_onnx.graph import add_outputs
from pfv_onnx.runtime import Session

# (side of each earlier tap, F_N's (channels, h, w)): one tap per stage, at the stage's own resolution, and
# F_N the tensor entering the head's pooling. Read off each architecture at its export size.
EXPECTED = {
    "keras_mobilenet_v2": ((48, 24, 12, 6), (1280, 3, 3)),
    "keras_mobilenet_v2_export": ((48, 24, 12, 6), (1280, 3, 3)),
    "keras_mobilenet_v2_slim": ((48, 24, 12, 6), (1280, 3, 3)),
    "keras_efficientnet_b0": ((32, 16, 8, 4), (1280, 2, 2)),
    "keras_resnet50": ((32, 16, 8, 4), (2048, 2, 2)),
    "keras_densenet121": ((32, 16, 8, 4), (1024, 2, 2)),
    "timm_resnetblur18": ((32, 16, 8, 4), (512, 2, 2)),
    "timm_resnet18_dynamo": ((32, 16, 8, 4), (512, 2, 2)),
    "timm_mobilenetv3_small_dynamo": ((32, 16, 8, 4), (576, 2, 2)),
    "timm_efficientnet_b0": ((32, 16, 8, 4), (1280, 2, 2)),
    "paddle_mobilenet_v2": ((32, 16, 8, 4), (1280, 2, 2)),
    "paddle_resnet18": ((32, 16, 8, 4), (512, 2, 2)),
}
DOWNSAMPLING = {"Conv", "MaxPool", "AveragePool"}
# Transformers: (first patch token, other tokens, F_N's (channels, h, w)); channels-last maps (Swin) have no
# token axis (None). Read off each architecture: a 64 px input in patches of 8 (Swin: of 4, merged twice).
TRANSFORMERS = {
    "timm_vit_reg4_48x80": (5, 5, (64, 6, 10)),  # class + 4 registers first, a non-square grid
    "timm_vit_dynamo": (1, 1, (64, 8, 8)),
    "timm_deit_distilled": (2, 2, (64, 8, 8)),  # class + distillation
    "timm_swin": (None, 0, (128, 4, 4)),
    "timm_swin_dynamo": (None, 0, (128, 4, 4)),
    "hf_vit": (1, 1, (64, 8, 8)),
    "hf_vit_dynamo": (1, 1, (64, 8, 8)),
    "hf_vit_opset14": (1, 1, (64, 8, 8)),
    "hf_swin": (0, 0, (128, 4, 4)),  # (B, h*w, C) tokens after two patch mergings  # its final norm written out as ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add
    "torch_vit_registers_last": (1, 4, (64, 8, 8)),  # class first, 3 registers after the patches
    "torch_vit_linear_patches": (1, 1, (64, 8, 8)),  # patches by a reshape of the image and a linear layer
}


def test_the_corpus_is_here_with_its_sources():
    sources = json.loads((corpus.CORPUS / "SOURCES.json").read_text())
    assert sorted(p.stem for p in corpus.CORPUS.glob("*.onnx")) == sorted([*EXPECTED, *TRANSFORMERS]) == sorted(sources)


def enters_a_downsampling(model: onnx.ModelProto, tensor: str) -> bool:
    """Whether ``tensor`` is read by a strided convolution or pool, directly or through a Pad or Identity."""
    readers = [n for n in model.graph.node if tensor in n.input]
    for node in readers:
        strides = next((list(a.ints) for a in node.attribute if a.name == "strides"), [1])
        if node.op_type in DOWNSAMPLING and max(strides) > 1 and node.input[0] == tensor:
            return True
        if node.op_type in ("Pad", "Identity") and enters_a_downsampling(model, node.output[0]):
            return True
    return False


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_export(name):
    model = corpus.load(name)
    tapped = tap_model(model)
    sides, final = EXPECTED[name]
    producers = {out: node for node in model.graph.node for out in node.output}
    pfv = PFV(model, preset="raw" if name.startswith("keras") else "imagenet", weighting="paper")
    x = pfv.featurizer.load(np.random.default_rng(0).integers(0, 256, (2, 80, 90, 3), dtype=np.uint8)).inputs
    features = pfv.featurizer.forward(x, maps=True)
    assert [m.shape[1:] for m in features.maps] == [(s, s) for s in sides]
    assert features.final.shape[1:] == final
    for tap in tapped.outputs.taps:
        assert producers[tap].op_type != "Pad" and enters_a_downsampling(model, tap), tap
    # A global pooling gates the tensor it pooled in a squeeze-and-excitation block: never a tap's reader.
    for tap in tapped.outputs.taps:
        assert not any(n.op_type in ("GlobalAveragePool", "ReduceMean") and tap in n.input for n in model.graph.node), tap

    original = Session(model).run(x)
    rewritten = Session(tapped.model).run(x, list(original))
    for key, value in original.items():
        np.testing.assert_allclose(rewritten[key], value, rtol=1e-5, atol=1e-5)
    result = pfv(x)
    assert np.isfinite(result.rgb).all() and result.rgb.min() >= 0 and result.rgb.max() <= 1 and result.rgb.std() > 0.05


@pytest.mark.parametrize("name", sorted(TRANSFORMERS))
def test_real_transformer_export(name):
    """The token rule finds the grid, the other tokens and F_N; F_N holds exactly the patch tokens, laid out as
    the grid; the original outputs are unchanged; PFV runs."""
    model = corpus.load(name)
    tapped = tap_model(model)
    start, prefix, final = TRANSFORMERS[name]
    tokens = tapped.tokens
    assert tokens is not None and tapped.outputs.taps == ()
    assert (tokens.prefix, (tokens.channels, tokens.height, tokens.width)) == (prefix, final)
    assert tokens.channels_last == (start is None) and (start is None or tokens.start == start)
    size = tapped.input.size_or_default
    x = np.random.default_rng(0).standard_normal((2, 3, *size)).astype(np.float32)
    original = Session(model).run(x)
    read = Session(add_outputs(model, [tokens.tokens])).run(x, [tokens.tokens, *original])
    rewritten = Session(tapped.model).run(x, [tapped.outputs.final, *original])
    for key, value in original.items():
        np.testing.assert_allclose(rewritten[key], value, rtol=1e-5, atol=1e-5)
    # F_N, (B, C, h, w), is the patch tokens in row-major order: what a hand-written reshape_transform gives
    sequence = read[tokens.tokens]
    if tokens.channels_last:
        expected = sequence.transpose(0, 3, 1, 2)
    else:
        assert sequence.shape[1] == prefix + tokens.height * tokens.width
        patches = sequence[:, tokens.start : tokens.start + tokens.height * tokens.width]
        expected = patches.reshape(2, tokens.height, tokens.width, -1).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(rewritten[tapped.outputs.final], expected)
    result = PFV(model, preset="imagenet")(x)
    assert np.isfinite(result.rgb).all() and result.rgb.shape == (2, *size, 3) and result.rgb.std() > 0.05


def test_an_earlier_blocks_tokens_named_as_the_final_layer():
    """``final=`` takes a token sequence too: the first block's output of a ViT with four registers, cut and laid
    out as its grid; a tensor of tokens that make no grid is refused with one line."""
    model = corpus.load("timm_vit_reg4_48x80")
    block = "/blocks/blocks.0/Add_1_output_0"
    tapped = tap_model(model, final=block)
    assert tapped.tokens is not None and (tapped.tokens.tokens, tapped.tokens.start, tapped.tokens.height, tapped.tokens.width) == (block, 5, 6, 10)
    x = np.random.default_rng(0).standard_normal((2, 3, 48, 80)).astype(np.float32)
    sequence = Session(add_outputs(model, [block])).run(x, [block])[block]
    grid = Session(tapped.model).run(x, [tapped.outputs.final])[tapped.outputs.final]
    np.testing.assert_array_equal(grid, sequence[:, 5:65].reshape(2, 6, 10, 64).transpose(0, 3, 1, 2))
    with pytest.raises(LayerError, match="holds 1 tokens, which do not make the 6 x 10 patch grid"):
        tap_model(model, final="/Expand_output_0")  # the class token, (B, 1, C)


def test_a_grid_given_where_the_graph_cannot_tell_it():
    """``grid=`` names the patch grid: the same tokens as the rule finds by itself, and a grid no tokens make
    is refused with one line. A transformer-sized attention tensor laid out ``(N, B, C)`` is not taken for
    tokens."""
    model = corpus.load("torch_vit_linear_patches")
    assert tap_model(model, grid=(8, 8)).tokens == tap_model(model).tokens
    with pytest.raises(LayerError, match="grid= 4 x 4: no sequence of tokens in the model makes that grid"):
        tap_model(model, grid=(4, 4))


def test_earlier_blocks_tokens_named_as_layers():
    """``layers=`` takes token sequences: each is laid out as its grid, an earlier one's map is its tokens'
    length, and the last is F_N unless ``final`` names another."""
    model = corpus.load("timm_vit_reg4_48x80")
    first, second = "/blocks/blocks.0/Add_1_output_0", "/norm/LayerNormalization_output_0"
    tapped = tap_model(model, layers=[first], final=second)
    assert tapped.tokens is not None and tapped.tokens.tokens == second and tapped.outputs.tokens
    assert len(tapped.outputs.taps) == 1 and tapped.outputs.taps[0].startswith("pfv_token_grid")
    x = np.random.default_rng(0).standard_normal((2, 3, 48, 80)).astype(np.float32)
    sequence = Session(add_outputs(model, [first])).run(x, [first])[first]
    read = Session(tapped.model).run(x, [tapped.outputs.maps[0], tapped.outputs.final])
    length = np.linalg.norm(sequence[:, 5:65], axis=2).reshape(2, 1, 6, 10)
    np.testing.assert_allclose(read[tapped.outputs.maps[0]], length, rtol=1e-4)
    result = PFV(model, layers=[first], final=second, preset="imagenet", weighting="paper")(x)
    assert np.isfinite(result.rgb).all() and result.rgb.std() > 0.05


@pytest.mark.parametrize("weighting", ["focus", "paper"])
def test_token_sequences_of_two_swin_stages_as_layers(weighting, tmp_path):
    """Two stages of another grid and width: each tap keeps its own shape, and a basis fitted with the
    earlier stage feeding the weighting reads back and colours the same pictures."""
    model = corpus.load("hf_swin")
    first = "/model/swin/encoder/layers.0/blocks.0/layernorm_after/LayerNormalization_output_0"
    last = "/model/swin/layernorm/LayerNormalization_output_0"
    tapped = tap_model(model, layers=[first, last])
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    read = Session(tapped.model).run(x, [tapped.outputs.maps[0], tapped.outputs.final])
    assert read[tapped.outputs.maps[0]].shape == (2, 1, 16, 16) and read[tapped.outputs.final].shape == (2, 128, 4, 4)
    pfv = PFV(model, layers=[first, last], preset="imagenet", weighting=weighting)
    result = pfv.fit_transform(x)
    again = PFV(model, layers=[first, last], preset="imagenet", basis=pfv.save_basis(tmp_path / "basis.npz")).transform(x)
    np.testing.assert_allclose(again.rgb, result.rgb, atol=1e-5)
    assert np.isfinite(result.rgb).all() and result.rgb.std() > 0.05
