"""EigenCAM and CAM against direct computations, and the classifier-head reader."""

from __future__ import annotations

import numpy as np
import onnx

from helpers import graphs, reference
from pfv_onnx.core import class_activation_maps, eigen_cam
from pfv_onnx.graph import linear_head


def unit(x):
    return (x - x.min()) / (x.max() - x.min())


def test_eigen_cam_is_each_images_first_component():
    rng = np.random.default_rng(0)
    final = rng.random((3, 16, 5, 6)).astype(np.float32)
    got = eigen_cam(final, (20, 24))
    for b in range(3):
        X = final[b].reshape(16, -1).T.astype(np.float64)
        Xc = X - X.mean(axis=0)
        _, _, vt = np.linalg.svd(Xc)
        p = Xc @ vt[0]
        if np.corrcoef(p, X.sum(axis=1))[0, 1] < 0:
            p = -p
        expected = unit(reference.bilinear(np.maximum(p, 0).reshape(5, 6), (20, 24)))
        np.testing.assert_allclose(got[b], expected, atol=1e-5)


def test_class_activation_maps_are_weighted_channel_sums():
    rng = np.random.default_rng(1)
    final = rng.standard_normal((2, 8, 4, 4)).astype(np.float32)
    weight = rng.standard_normal((10, 8)).astype(np.float32)
    classes = np.array([[3, 7], [0, 3]])
    got = class_activation_maps(final, weight, classes, (16, 16))
    for b in range(2):
        for n, k in enumerate(classes[b]):
            cam = sum(weight[k, c] * final[b, c] for c in range(8))
            expected = unit(reference.bilinear(np.maximum(cam, 0), (16, 16)))
            np.testing.assert_allclose(got[b, n], expected, atol=1e-5)


def test_linear_head_reproduces_the_bundled_logits(mobilenet, animals_result):
    head = mobilenet.featurizer.head
    pooled = animals_result.features.final.mean(axis=(2, 3))
    np.testing.assert_allclose(pooled @ head.weight.T + head.bias, animals_result.logits, rtol=1e-4, atol=1e-4)


def test_linear_head_matmul_add_and_refusals():
    net = graphs.Net()
    a = net.conv("image", 3, 8, stride=2)
    pooled = net.op("ReduceMean", [a], keepdims=0, axes=[2, 3])
    w = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)
    b = np.arange(5, dtype=np.float32)
    logits = net.op("Add", [net.op("MatMul", [pooled, net.const(w)]), net.const(b)])
    model = net.model([graphs.image()], [graphs.output(logits, ["N", 5])])
    head = linear_head(model, a)
    np.testing.assert_array_equal(head.weight, w.T)
    np.testing.assert_array_equal(head.bias, b)
    vgg, _, final = graphs.vgg_like()  # Flatten of a spatial map: not global pooling
    assert linear_head(vgg, final) is None
    assert linear_head(onnx.ModelProto(), "x") is None
