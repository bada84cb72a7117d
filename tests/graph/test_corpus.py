"""Real exports, the way each framework's users make them (tests/corpus/, from models/export/corpus/):
the taps the rule names, the original outputs unchanged by tapping, and PFV on them."""

from __future__ import annotations

import json

from helpers import corpus
import numpy as np
import onnx
import pytest

from pfv_onnx import PFV, tap_model
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


def test_the_corpus_is_here_with_its_sources():
    sources = json.loads((corpus.CORPUS / "SOURCES.json").read_text())
    assert sorted(p.stem for p in corpus.CORPUS.glob("*.onnx")) == sorted(EXPECTED) == sorted(sources)


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
