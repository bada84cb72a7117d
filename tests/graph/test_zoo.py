"""All nine model-zoo graphs shipped in the onnx wheel (opset 9, fixed batch 1, placeholder weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from pfv_onnx import PFV, tap_model
from pfv_onnx.runtime import Session

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"

# (taps feeding A^b, F_N) by the tap rule, checked by hand against each graph's pools and strided convs:
# the first strided op on the image is never a tap, stride-1 pools are not, and one tap per resolution.
EXPECTED = {
    "bvlc_alexnet": (["r2", "r6"], "r13"),
    "densenet121": (["r6", "r104", "r292", "r660"], "r907"),
    "inception_v1": (["r1", "r8", "r37", "r108"], "r137"),
    "inception_v2": (["r6", "r21", "r124", "r365"], "r504"),
    "resnet50": (["r2", "r35", "r77", "r139"], "r171"),  # stage outputs, not the bottlenecks' inner tensors
    "shufflenet": (["r2", "r3", "r52", "r149"], "r198"),
    "squeezenet": (["r1", "r16", "r31"], "r64"),
    "vgg19": (["r3", "r8", "r17", "r26"], "r35"),  # the paper's rule: the five max-pool inputs
    "zfnet512": (["r2", "r3", "r6"], "r13"),
}


def test_all_nine_graphs_are_here():
    assert sorted(p.stem.removeprefix("light_") for p in LIGHT.glob("light_*.onnx")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_zoo_graph(name):
    path = LIGHT / f"light_{name}.onnx"
    tapped = tap_model(path)
    taps, final = EXPECTED[name]
    assert list(tapped.outputs.taps) == taps and tapped.outputs.final == final

    model = onnx.load(str(path))
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    original = Session(model).run(x)
    rewritten = Session(tapped.model).run(x, list(original))
    for key, value in original.items():
        np.testing.assert_allclose(rewritten[key], value, rtol=1e-5, atol=1e-6)

    batch = np.random.default_rng(1).standard_normal((4, 3, 224, 224)).astype(np.float32)
    result = PFV(path)(batch)  # fixed batch 1: four chunks of one, one PCA over all four
    assert result.rgb.shape == (4, 224, 224, 3)
    assert np.isfinite(result.rgb).all() and result.rgb.min() == 0.0 and result.rgb.max() == 1.0
