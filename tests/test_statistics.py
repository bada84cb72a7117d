"""Colours relative to the batch from F_N's statistics computed in the graph (channel sums and the C x C
scatter), with F_N projected where it is: the same pictures as the NumPy decomposition, and F_N never fetched.
On a GPU this is the default; here it runs on the CPU provider, through the same I/O binding."""

from __future__ import annotations

import graphs
import numpy as np
import onnx
import pytest

from pfv_onnx import PFV, bundled, export, tap_model
from pfv_onnx.core.visualise import feature_matrix
from pfv_onnx.runtime import Session

PHOTOS = bundled.sample_images()


def same_pictures(model, photos=PHOTOS, **options):
    """PFV of ``photos`` with the statistics in the graph and without: both results."""
    plain = PFV(model, statistics_in_graph=False, **options)(photos)
    in_graph = PFV(model, statistics_in_graph=True, **options)(photos)
    assert in_graph.visualisation.pca.solver == "scatter" and plain.visualisation.pca.solver != "scatter"
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


def test_a_fixed_batch_padded_run_leaves_the_copies_out():
    """A model with a fixed batch of 4 runs 6 images as 4 + 2 padded with copies: the scatter and the
    channel sums are those of the 6 images alone."""
    model, _, _ = graphs.fixed_batch(4)
    tapped = tap_model(model, statistics=True)
    final_sum, sums, scatter = tapped.outputs.statistics
    session = Session(tapped.model)
    x = np.random.default_rng(0).standard_normal((6, 3, 32, 32)).astype(np.float32)
    values = session.run(x, [tapped.outputs.final, final_sum, sums], totals=[scatter])
    X = feature_matrix(values[tapped.outputs.final]).astype(np.float64)
    np.testing.assert_allclose(values[scatter][0], X.T @ X, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(values[sums].sum(axis=0), X.sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(values[final_sum][:, 0], values[tapped.outputs.final].sum(axis=1), rtol=1e-5, atol=1e-4)
    # Kept in onnxruntime and projected there, the same numbers as on the host.
    kept = session.run(x, [], kept=[tapped.outputs.final])[tapped.outputs.final]
    np.testing.assert_array_equal(kept.fetch(), values[tapped.outputs.final])
    mean, components = X.mean(axis=0), np.random.default_rng(1).standard_normal((3, X.shape[1]))
    projected = kept.project(mean, components)
    np.testing.assert_allclose(projected.reshape(-1, 3), (X - mean) @ components.T, rtol=1e-4, atol=1e-4)
    same_pictures(model, np.random.default_rng(2).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8), weighting="paper", preset="imagenet")
