"""The NumPy core against a direct implementation of the paper's equations (tests/reference.py)."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from pfv_onnx.core import channel_sum, normalise, resize_bilinear, total_activation, visualise
from pfv_onnx.core.normalise import FLAT_VALUE, ValueStats

from helpers import reference
from helpers.features import spiked_features

SIZE = (30, 27)  # not a multiple of the feature sizes, and not square


def layer_maps(batch=4, seed=1):
    rng = np.random.default_rng(seed)
    # Non-negative like post-ReLU channel sums, at three resolutions as in a real network.
    return [rng.gamma(2.0, 1.0, (batch, s, s + 1)).astype(np.float32) for s in (15, 11, 8)]


@pytest.mark.parametrize(
    "k, hierarchical, n_sigma, solver",
    [
        (k, h, s, solver)
        for k, h, s, solver in itertools.product((1, 2, 3, 5), (False, True), (0.5, 1.0, 2.0), ("covariance", "gram", "randomized"))
    ],
)
def test_visualise_matches_the_equations(k, hierarchical, n_sigma, solver):
    final = spiked_features()
    maps = layer_maps()
    got = visualise(final, maps, SIZE, n_components=k, hierarchical=hierarchical, n_sigma=n_sigma, solver=solver)
    rgb, A, components, ratio = reference.pfv(final, maps, SIZE, k=k, hierarchical=hierarchical, n_sigma=n_sigma)
    # Exact solvers agree to float32 rounding; the randomised one to its stated tolerance on a clear spectrum.
    tol = 2e-4 if solver != "randomized" else 2e-3
    assert got.rgb.shape == (4, *SIZE, 3) and got.rgb.dtype == np.float32
    np.testing.assert_allclose(got.activation, A, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got.components, components, rtol=tol, atol=tol * np.abs(components).max())
    np.testing.assert_allclose(got.rgb, rgb, atol=tol * 5)
    np.testing.assert_allclose(got.pca.explained_variance_ratio, ratio, rtol=tol)
    assert got.pca.solver == solver


def test_single_tap_uses_the_final_layers_own_activation():
    final = spiked_features()
    got = visualise(final, [], SIZE)
    rgb, A, _, _ = reference.pfv(final, [], SIZE)
    np.testing.assert_allclose(got.activation, A, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got.rgb, rgb, atol=1e-3)


def test_activation_from_the_graph_is_used_as_given():
    final, maps = spiked_features(), layer_maps()
    given = reference.activation_map(final, maps, SIZE).astype(np.float32) * 2.0 + 1.0
    got = visualise(final, maps, SIZE, activation=given)
    np.testing.assert_array_equal(got.activation, given)
    expected = reference.normalise((reference.pfv(final, maps, SIZE)[2] * given[..., None]), 1.0)
    np.testing.assert_allclose(got.rgb, expected, atol=1e-3)


def test_output_is_in_unit_range_and_deterministic():
    final, maps = spiked_features(seed=3), layer_maps(seed=4)
    a = visualise(final, maps, SIZE, solver="randomized")
    b = visualise(final, maps, SIZE, solver="randomized")
    assert np.isfinite(a.rgb).all() and a.rgb.min() == 0.0 and a.rgb.max() == 1.0
    np.testing.assert_array_equal(a.rgb, b.rgb)


def test_positive_scale_of_features_leaves_the_picture_unchanged():
    final, maps = spiked_features(), layer_maps()
    a = visualise(final, maps, SIZE)
    b = visualise(final * np.float32(1e3), [m * np.float32(1e-3) for m in maps], SIZE)
    np.testing.assert_allclose(a.rgb, b.rgb, atol=1e-4)


def test_permuting_the_batch_permutes_the_pictures():
    final, maps = spiked_features(), layer_maps()
    order = np.array([2, 0, 3, 1])
    a = visualise(final, maps, SIZE, solver="covariance")
    b = visualise(final[order], [m[order] for m in maps], SIZE, solver="covariance")
    np.testing.assert_allclose(b.rgb, a.rgb[order], atol=1e-5)


def test_channel_sum_and_total_activation():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(channel_sum(features), features.sum(axis=1), rtol=1e-6)
    maps = layer_maps(batch=2)
    np.testing.assert_allclose(total_activation(maps, SIZE), reference.activation_map(features, maps, SIZE), rtol=1e-5)


@pytest.mark.parametrize("src, dst", [((7, 7), (224, 224)), ((15, 16), (30, 27)), ((30, 27), (7, 5)), ((1, 1), (4, 3))])
@pytest.mark.parametrize("channels", [None, 3, 130])
def test_resize_bilinear_is_half_pixel_bilinear(src, dst, channels):
    rng = np.random.default_rng(0)
    shape = (2, *src) if channels is None else (2, *src, channels)
    x = rng.standard_normal(shape).astype(np.float32)
    got = resize_bilinear(x, dst)
    expected = np.stack([reference.bilinear(image, dst) for image in x])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_sigma", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("distribution", ["normal", "uniform", "skewed"])
def test_normalise_equals_the_five_steps(n_sigma, distribution):
    rng = np.random.default_rng(1)
    x = {"normal": rng.standard_normal, "uniform": rng.random, "skewed": lambda s: rng.gamma(0.5, 1.0, s)}[distribution]((3, 8, 8, 3))
    x = x.astype(np.float32)
    np.testing.assert_allclose(normalise(x, n_sigma), reference.normalise(x.astype(np.float64), n_sigma), atol=1e-5)


def test_flat_input_becomes_mid_grey_not_nan():
    final = np.ones((2, 4, 3, 3), np.float32)
    got = visualise(final, [np.ones((2, 6, 6), np.float32)], (12, 12))
    assert np.isfinite(got.rgb).all()
    np.testing.assert_array_equal(got.rgb, np.full_like(got.rgb, FLAT_VALUE))
    np.testing.assert_array_equal(got.pca.explained_variance_ratio, 0.0)
    np.testing.assert_array_equal(normalise(np.full((4, 4), 3.0, np.float32)), np.full((4, 4), FLAT_VALUE))


def test_bad_arguments_are_value_errors():
    final = spiked_features()
    with pytest.raises(ValueError, match="n_components"):
        visualise(final, [], SIZE, n_components=4 * 36 + 1)
    with pytest.raises(ValueError, match="n_sigma"):
        visualise(final, [], SIZE, n_sigma=0)
    with pytest.raises(ValueError, match="activation map"):
        visualise(final, [np.ones((3, 5, 5), np.float32)], SIZE)
    with pytest.raises(ValueError, match="NaN"):
        visualise(np.full((2, 4, 3, 3), np.nan, np.float32), [], SIZE)


@pytest.mark.parametrize("shape, scale", [((5,), 1.0), ((4097,), 3.0), ((8, 224, 224, 3), 1.0), ((3, 7), 1e35)])
def test_value_statistics_match_float64_sums(shape, scale):
    """Row-wise float32 partial sums, float64 totals: within 1e-6 of float64 sums over everything, and
    values whose sums leave float32's range are summed in float64."""
    x = (np.random.default_rng(len(shape)).standard_normal(shape) * 2 + 1).astype(np.float32) * np.float32(scale)
    stats, x64 = ValueStats.of(x), x.astype(np.float64)
    assert stats.count == x.size and stats.lo == x.min() and stats.hi == x.max()
    np.testing.assert_allclose(stats.total, x64.sum(), rtol=1e-6)
    np.testing.assert_allclose(stats.squares, np.square(x64).sum(), rtol=1e-6)


def test_images_shared_between_threads_give_the_same_pictures(monkeypatch):
    final, maps = spiked_features(batch=5), layer_maps(batch=5)
    shared = visualise(final, maps, (32, 32), threads=2)
    alone = visualise(final, maps, (32, 32), threads=1)
    assert np.array_equal(shared.rgb, alone.rgb) and np.array_equal(shared.activation, alone.activation)
    assert shared.scaling == alone.scaling


def test_in_parallel_covers_every_item_once_and_raises_the_first_error():
    from pfv_onnx.core.parallel import in_parallel

    seen, names = [], []

    def record(part):
        seen.extend(part)
        names.append(threading.current_thread().name)

    in_parallel(record, 7, threads=3)
    assert sorted(seen) == list(range(7)) and len(set(names)) == 3
    names.clear()
    in_parallel(record, 2, threads=3)  # too few images to be worth a thread
    assert names == [threading.current_thread().name]

    def failing(part):
        if 0 not in part:
            raise ValueError("in a helper thread")

    with pytest.raises(ValueError, match="helper"):
        in_parallel(failing, 4, threads=2)
