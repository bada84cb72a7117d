"""Colours relative to the batch from F_N's statistics computed in the graph (channel sums and the C x C
scatter), with F_N projected where it is: the same pictures as the NumPy decomposition, and F_N never fetched.
On a GPU this is the default; here it runs on the CPU provider, through the same I/O binding."""

from __future__ import annotations

from helpers import graphs
import numpy as np
import onnx
import pytest

from pfv_onnx import PFV, export, tap_model
from pfv_onnx.images import bundled
from pfv_onnx.core.visualise import feature_matrix
from pfv_onnx.runtime import Session

PHOTOS = bundled.sample_images()


def same_pictures(model, photos=PHOTOS, **options):
    """PFV of ``photos`` with the statistics in the graph and without: both results."""
    plain = PFV(model, statistics_in_graph=False, **options)(photos)
    in_graph = PFV(model, statistics_in_graph=True, **options)(photos)
    assert in_graph.visualisation.pca.n_samples == plain.visualisation.pca.n_samples
    assert not in_graph.features.final_fetched  # F_N stayed in onnxruntime
    cosines = np.abs((plain.visualisation.pca.components * in_graph.visualisation.pca.components).sum(axis=1))
    assert cosines.min() >= 0.999, cosines
    np.testing.assert_allclose(in_graph.visualisation.pca.explained_variance, plain.visualisation.pca.explained_variance, rtol=1e-3)
    assert np.abs(in_graph.rgb - plain.rgb).max() * 255 <= 1.0
    assert plain.rgb.std() > 0.05
    return plain, in_graph


@pytest.mark.parametrize("options", [{}, {"weighting": "paper"}, {"weighting": "paper", "hierarchical": True}], ids=["focus", "paper", "hierarchical"])
def test_mobilenet_v2(options):
    same_pictures("mobilenet_v2", **options)


def test_efficientnet_lite0():
    same_pictures("efficientnet_lite0")


def test_exported_with_statistics(tmp_path):
    outputs = export("mobilenet_v2", tmp_path / "m.onnx", statistics=True)
    assert outputs.statistics == ("pfv_final_sum", "pfv_channel_sums", "pfv_scatter")
    same_pictures(tmp_path / "m.onnx")


def test_float16_model():
    same_pictures(graphs.half_precision(onnx.load(str(bundled.model_path()))), preset="imagenet")


def test_a_fixed_batch_padded_run_is_read_from_f_n():
    """A model with a fixed batch of 4 runs 6 images as 4 + 2 padded with copies: the first run's scatter is
    the graph's (centred about the run's mean), the padded one is read from F_N; merged, the statistics are
    those of the 6 images alone."""
    model, _, _ = graphs.fixed_batch(4)
    tapped = tap_model(model, statistics=True)
    final_sum, sums, scatter = tapped.outputs.statistics
    session = Session(tapped.model)
    x = np.random.default_rng(0).standard_normal((6, 3, 32, 32)).astype(np.float32)
    features = session.run(x, [tapped.outputs.final])[tapped.outputs.final]
    values = session.run(x, [final_sum, sums], per_run=[scatter], kept=[tapped.outputs.final])
    runs = values[scatter]
    assert [(r.used, r.padded) for r in runs] == [(4, False), (2, True)]
    first = feature_matrix(features[:4]).astype(np.float64)
    centred = first - first.mean(axis=0)
    np.testing.assert_allclose(runs[0].value, centred.T @ centred, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(values[final_sum][:, 0], features.sum(axis=1), rtol=1e-5, atol=1e-4)
    # Kept in onnxruntime and projected there: the same numbers as on the host.
    kept = values[tapped.outputs.final]
    X = feature_matrix(features).astype(np.float64)
    mean, components = X.mean(axis=0), np.random.default_rng(1).standard_normal((3, X.shape[1]))
    projected = kept.project(mean, components)
    np.testing.assert_allclose(projected.reshape(-1, 3), (X - mean) @ components.T, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(kept.fetch(), features)
    same_pictures(model, np.random.default_rng(2).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8), weighting="paper", preset="imagenet")


def test_large_means_keep_their_small_variances():
    """F_N shifted by 1000, its spread unchanged: the scatter is centred on the device, so the components are
    those of NumPy's float64 decomposition (an uncentred float32 sum would lose them)."""
    model, _, final = graphs.vgg_like()
    producer = next(node for node in model.graph.node if final in node.output)
    producer.output[list(producer.output).index(final)] = f"{final}_raw"
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.float32(1000.0), "offset"))
    model.graph.node.insert(list(model.graph.node).index(producer) + 1, onnx.helper.make_node("Add", [f"{final}_raw", "offset"], [final]))
    onnx.checker.check_model(model)
    assert PFV(model, preset="imagenet").final == final
    same_pictures(model, np.random.default_rng(3).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), weighting="paper", preset="imagenet")
