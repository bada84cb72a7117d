"""Property tests: the core on random shapes and values, and random small CNN graphs through the export."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from helpers import graphs
from pfv_onnx import PFV, tap_model
from pfv_onnx.core import visualise
from pfv_onnx.runtime import Session

# Derandomised: CI sees the same examples every run (found failures are then fixed, not flaky).
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def batches(draw):
    """Random PFV inputs: ``F_N``, 0-3 earlier maps (non-negative or not), an output size, ``k``."""
    b = draw(st.integers(1, 4))
    c = draw(st.integers(1, 12))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    k = draw(st.integers(1, min(4, c, b * h * w)))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([1e-6, 1.0, 1e4]))
    rng = np.random.default_rng(seed)
    final = (rng.standard_normal((b, c, h, w)) * scale).astype(np.float32)
    if draw(st.booleans()):
        final = np.maximum(final, 0)  # post-ReLU features, often many zeros
    maps = [rng.gamma(1.0, 1.0, (b, draw(st.integers(1, 9)), draw(st.integers(1, 9)))).astype(np.float32) for _ in range(draw(st.integers(0, 3)))]
    size = (draw(st.integers(2, 20)), draw(st.integers(2, 20)))
    hierarchical = draw(st.booleans())
    return final, maps, size, k, hierarchical


def separated(final: np.ndarray, k: int) -> bool:
    """Whether the top ``k + 1`` eigenvalues are distinct enough for the components to be well defined
    (with repeated eigenvalues any rotation is a valid answer, and properties that compare two runs on
    different inputs cannot hold)."""
    X = final.transpose(0, 2, 3, 1).reshape(-1, final.shape[1]).astype(np.float64)
    if len(X) < 2:
        return False
    Xc = X - X.mean(axis=0)
    values = np.sort(np.linalg.eigvalsh(Xc.T @ Xc))[::-1]
    values = np.append(values, 0.0)[: k + 1]
    return values[0] > 0 and bool(np.all(np.diff(values[:k + 1]) < -1e-3 * values[0]))


@SETTINGS
@given(batches())
def test_output_is_finite_in_unit_range_and_repeatable(case):
    final, maps, size, k, hierarchical = case
    a = visualise(final, maps, size, n_components=k, hierarchical=hierarchical)
    assert a.rgb.shape == (final.shape[0], *size, 3)
    assert np.isfinite(a.rgb).all() and a.rgb.min() >= 0.0 and a.rgb.max() <= 1.0
    b = visualise(final, maps, size, n_components=k, hierarchical=hierarchical)
    np.testing.assert_array_equal(a.rgb, b.rgb)


@SETTINGS
@given(batches(), st.randoms(use_true_random=False))
def test_permuting_the_batch_permutes_the_output(case, random):
    final, maps, size, k, hierarchical = case
    assume(separated(final, k))
    order = list(range(final.shape[0]))
    random.shuffle(order)
    a = visualise(final, maps, size, n_components=k, hierarchical=hierarchical, solver="covariance")
    b = visualise(final[order], [m[order] for m in maps], size, n_components=k, hierarchical=hierarchical, solver="covariance")
    np.testing.assert_allclose(b.rgb, a.rgb[order], atol=1e-3)


@SETTINGS
@given(batches(), st.sampled_from([1e-3, 7.0, 1e3]))
def test_scaling_the_features_leaves_the_picture_unchanged(case, factor):
    final, maps, size, k, hierarchical = case
    assume(separated(final, k))
    a = visualise(final, maps, size, n_components=k, hierarchical=hierarchical, solver="covariance")
    b = visualise(final * np.float32(factor), maps, size, n_components=k, hierarchical=hierarchical, solver="covariance")
    np.testing.assert_allclose(b.rgb, a.rgb, atol=1e-3)


@st.composite
def cnns(draw):
    """A random small CNN: convolutions (stride 1 or 2, kernel 1 or 3), pools, residual branches and
    concatenations, then global average pooling and a linear head."""
    net = graphs.Net(seed=draw(st.integers(0, 1000)))
    channels = draw(st.sampled_from([4, 8]))
    stride = draw(st.sampled_from([1, 2]))
    x, side = net.conv("image", 3, channels, stride=stride), 32 // stride
    for _ in range(draw(st.integers(2, 6))):
        kind = draw(st.sampled_from(["conv", "strided", "maxpool", "avgpool", "residual", "concat"]))
        if kind in ("maxpool", "avgpool") and side >= 4:
            op = "MaxPool" if kind == "maxpool" else "AveragePool"
            x, side = net.op(op, [x], kernel_shape=[2, 2], strides=[2, 2]), side // 2
        elif kind == "strided" and side >= 4:
            out = draw(st.sampled_from([4, 8, 12]))
            x, channels, side = net.conv(x, channels, out, k=draw(st.sampled_from([1, 3])), stride=2), out, (side + 1) // 2
        elif kind == "residual":
            x = net.op("Relu", [net.op("Add", [x, net.conv(x, channels, channels, relu=False)])])
        elif kind == "concat":
            extra = draw(st.sampled_from([2, 4]))
            x, channels = net.op("Concat", [x, net.conv(x, channels, extra, k=1)], axis=1), channels + extra
        else:
            out = draw(st.sampled_from([4, 8]))
            x, channels = net.conv(x, channels, out, k=draw(st.sampled_from([1, 3]))), out
    pooled = net.op("Flatten", [net.op("GlobalAveragePool", [x])], axis=1)
    logits = net.gemm(pooled, channels, 5)
    return net.model([graphs.image()], [graphs.output(logits, ["N", 5])])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(cnns())
def test_random_cnns_keep_their_outputs_through_the_export(model):
    tapped = tap_model(model)
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    name = model.graph.output[0].name
    np.testing.assert_allclose(Session(tapped.model).run(x)[name], Session(model).run(x)[name], rtol=1e-5, atol=1e-5)
    result = PFV(model)(x)
    assert np.isfinite(result.rgb).all() and result.rgb.min() >= 0 and result.rgb.max() <= 1
