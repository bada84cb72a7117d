"""The PCA solvers: agreement with a full SVD, deterministic signs, the randomised solver's tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from pfv_onnx.core import fit_pca, fit_transform_pca
from pfv_onnx.core.decomposition import EXACT_LIMIT, angle_bound


def wide_features(n: int, c: int, gap: float, seed: int = 0) -> np.ndarray:
    """``(n, c)`` features whose leading eigenvalues fall by ``gap`` (relative) from one to the next."""
    rng = np.random.default_rng(seed)
    strengths = 10.0 * (1.0 - gap) ** np.arange(6)
    basis, _ = np.linalg.qr(rng.standard_normal((c, 6)))
    X = (rng.standard_normal((n, 6)) * np.sqrt(strengths)) @ basis.T
    return (X + 0.05 * rng.standard_normal((n, c)) + rng.random(c)).astype(np.float32)


def svd_reference(X: np.ndarray, k: int):
    Xc = X.astype(np.float64) - X.astype(np.float64).mean(axis=0)
    _, s, vt = np.linalg.svd(Xc, full_matrices=False)
    return vt[:k], s[:k] ** 2 / (len(X) - 1), s[:k] ** 2 / np.sum(s**2)


@pytest.mark.parametrize("shape", [(300, 40), (40, 300)])
@pytest.mark.parametrize("solver", ["covariance", "gram"])
def test_exact_solvers_match_the_svd(shape, solver):
    X = wide_features(*shape, gap=0.2)
    pca = fit_pca(X, 4, solver=solver)
    vt, variance, ratio = svd_reference(X, 4)
    np.testing.assert_allclose(np.abs(pca.components @ vt.T), np.eye(4), atol=1e-6)
    np.testing.assert_allclose(pca.explained_variance, variance, rtol=1e-6)
    np.testing.assert_allclose(pca.explained_variance_ratio, ratio, rtol=1e-6)
    assert pca.mean.dtype == np.float64 and pca.components.dtype == np.float64


@pytest.mark.parametrize("gap", [0.05, 0.01, 0.001])
@pytest.mark.parametrize("n, c", [(1568, 1280), (800, 2048), (392, 1280)])
def test_randomized_solver_equals_the_exact_one_whatever_the_gap(n, c, gap):
    """|corr| >= 0.999 per component: iterated to TOLERANCE, or exact where the eigenvalues lie too close."""
    X = wide_features(n, c, gap=gap)
    exact, exact_scores = fit_transform_pca(X, 3, solver="gram" if n < c else "covariance")
    fast, fast_scores = fit_transform_pca(X, 3, solver="randomized")
    for i in range(3):
        corr = np.corrcoef(exact_scores[:, i], fast_scores[:, i])[0, 1]
        assert corr >= 0.999, (i, corr, fast.solver)  # signs agree too: the same sign rule on both
    np.testing.assert_allclose(fast.explained_variance_ratio, exact.explained_variance_ratio, rtol=1e-3)


def test_where_two_kept_eigenvalues_coincide_the_exact_solver_runs():
    """No number of iterations settles a component inside a tie: the randomised solver hands over."""
    rng = np.random.default_rng(4)
    n, c = 900, 1300
    noise = rng.standard_normal((n, 5))
    u, _ = np.linalg.qr(noise - noise.mean(axis=0))  # orthonormal columns of mean 0: already centred
    v, _ = np.linalg.qr(rng.standard_normal((c, 5)))
    X = u @ np.diag([9.0, 6.0, 4.0, 4.0, 1.0]) @ v.T  # components 3 and 4 tie
    fast, fast_scores = fit_transform_pca(X, 3, solver="randomized")
    exact, exact_scores = fit_transform_pca(X, 3, solver="gram")
    assert fast.solver == "gram"
    np.testing.assert_allclose(fast.explained_variance, exact.explained_variance, rtol=1e-6)
    for i in range(2):  # the untied ones are the same; the third is any direction of the tie
        assert abs(np.corrcoef(exact_scores[:, i], fast_scores[:, i])[0, 1]) >= 0.999


def test_the_angle_bound_holds():
    """Davis-Kahan: the residual over the gap bounds the sine of the angle to the exact eigenvector."""
    X = wide_features(600, 300, gap=0.1).astype(np.float64)
    Xc = X - X.mean(axis=0)
    values, vectors = np.linalg.eigh(Xc.T @ Xc)
    values, vectors = values[::-1], vectors[:, ::-1]
    rng = np.random.default_rng(0)
    for size in (1e-4, 1e-3, 1e-2):
        rough = vectors[:, :13] + size * rng.standard_normal((300, 13))
        rough /= np.linalg.norm(rough, axis=0)
        estimates = np.einsum("ci,cd,di->i", rough, Xc.T @ Xc, rough)  # Rayleigh quotients
        sines = np.sqrt(np.maximum(0, 1 - np.sum(rough[:, :3] * vectors[:, :3], axis=0) ** 2))
        assert angle_bound(Xc, estimates, rough.T, 3) >= sines.max() > 0


def test_auto_picks_the_solver_by_shape():
    assert fit_pca(wide_features(400, 64, 0.2)).solver == "covariance"
    assert fit_pca(wide_features(64, 400, 0.2)).solver == "gram"
    assert fit_pca(wide_features(EXACT_LIMIT + 100, EXACT_LIMIT + 1, 0.2)).solver == "randomized"


def test_sign_rule_largest_loading_is_positive_in_every_solver():
    X = wide_features(200, 30, 0.2)
    bases = [fit_pca(X, 3, solver=solver).components for solver in ("covariance", "gram", "randomized")]
    for basis in bases:
        strongest = basis[np.arange(3), np.abs(basis).argmax(axis=1)]
        assert (strongest > 0).all()
    # Three different algorithms, whose raw signs are arbitrary, agree once the rule is applied.
    np.testing.assert_allclose(bases[1], bases[0], atol=1e-6)
    np.testing.assert_allclose(bases[2], bases[0], atol=1e-3)


def test_deterministic_run_to_run():
    X = wide_features(900, 600, 0.1)
    a, sa = fit_transform_pca(X, 3, solver="randomized")
    b, sb = fit_transform_pca(X, 3, solver="randomized")
    np.testing.assert_array_equal(a.components, b.components)
    np.testing.assert_array_equal(sa, sb)


def test_transform_equals_the_fitted_scores():
    X = wide_features(300, 40, 0.2)
    pca, scores = fit_transform_pca(X, 3, solver="covariance")
    np.testing.assert_allclose(pca.transform(X), scores, rtol=1e-9, atol=1e-9)


def test_input_validation():
    with pytest.raises(ValueError, match="2-D"):
        fit_pca(np.zeros(5))
    with pytest.raises(ValueError, match="at most 4"):
        fit_pca(np.random.default_rng(0).random((4, 10)), 5)
    with pytest.raises(ValueError, match="solver"):
        fit_pca(np.random.default_rng(0).random((10, 4)), solver="magic")
    with pytest.raises(ValueError, match="NaN"):
        fit_pca(np.array([[1.0, np.inf], [0.0, 1.0], [2.0, 2.0]]), 1)


@pytest.mark.parametrize("scale", [1e37, 1e39])
def test_huge_features_fall_back_to_float64_instead_of_overflowing(scale):
    """1e37 fits float32 but its products do not; 1e39 does not fit float32 at all."""
    X = wide_features(700, 600, 0.1).astype(np.float64) * scale
    fast, fast_scores = fit_transform_pca(X, 3, solver="randomized")
    exact, exact_scores = fit_transform_pca(X, 3, solver="covariance")
    assert np.isfinite(fast.explained_variance).all() and np.isfinite(fast.total_variance)
    np.testing.assert_allclose(fast.explained_variance_ratio, exact.explained_variance_ratio, rtol=0.01)
    for i in range(3):
        assert np.corrcoef(exact_scores[:, i], fast_scores[:, i])[0, 1] >= 0.99


@pytest.mark.parametrize("scale", [1e18, 1e30])
def test_huge_float32_features_centred_in_place_keep_their_variance(scale):
    """Squares beyond float32's range while the input itself is centred in place (copy=False, as the
    pipeline calls it): the variance is summed again in float64, the data is not centred twice."""
    X64 = wide_features(700, 600, 0.1).astype(np.float64) * scale
    exact = fit_pca(X64, 3, solver="covariance")
    X32 = X64.astype(np.float32)
    fast, _ = fit_transform_pca(X32, 3, solver="randomized", copy=False)
    np.testing.assert_allclose(fast.explained_variance_ratio, exact.explained_variance_ratio, rtol=0.01)
    np.testing.assert_allclose(fast.total_variance, exact.total_variance, rtol=1e-5)


def _low_rank(rng: np.random.Generator, n: int, c: int, singular: np.ndarray) -> np.ndarray:
    r = len(singular)
    left = rng.standard_normal((n, r))
    left -= left.mean(axis=0)
    return (np.linalg.qr(left)[0] * singular) @ np.linalg.qr(rng.standard_normal((c, r)))[0].T


def test_rank_deficient_features_in_float64_keep_the_components_orthonormal():
    """Beyond float32's range the solver works in float64, where a Krylov block that lies in the basis is
    rounding: it is not taken for new directions (the components came back 5x too strong, not orthonormal)."""
    X = _low_rank(np.random.default_rng(2), 300, 300, np.array([10.0, 9, 5, 2, 1])) * 1e39
    with np.errstate(over="ignore", invalid="ignore"):
        fast, _ = fit_transform_pca(X, 20, solver="randomized")
    exact, _ = fit_transform_pca(X, 20, solver="covariance")
    np.testing.assert_allclose(fast.components @ fast.components.T, np.eye(20), atol=1e-8)
    np.testing.assert_allclose(fast.explained_variance[:5], exact.explained_variance[:5], rtol=1e-6)


def test_more_channels_than_pixels_and_many_components_stay_within_the_tolerance():
    """With fewer pixels than channels a basis of as many vectors as pixels is not the whole space: the
    stopping test still decides (vectors 0.99 off the exact ones came back)."""
    X = _low_rank(np.random.default_rng(1), 300, 600, np.geomspace(1, 1e-3, 299))
    fast, _ = fit_transform_pca(X, 250, solver="randomized")
    exact, _ = fit_transform_pca(X, 250, solver="gram")
    cosines = np.abs(np.sum(fast.components * exact.components, axis=1)) / np.linalg.norm(fast.components, axis=1)
    assert np.sqrt(np.clip(1 - cosines**2, 0, 1)).max() <= 0.02
