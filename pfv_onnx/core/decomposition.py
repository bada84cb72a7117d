"""Principal components of the final feature map (paper eqs. 3-4), in float64, with deterministic signs.

The final layer ``F_N`` of shape ``(B, C, h, w)`` becomes a ``(B*h*w, C)`` matrix: every pixel of every image
is one observation of ``C`` channels. Three solvers give the same components (up to the tolerance stated
for the randomised one), chosen by shape as scikit-learn's ``PCA`` does:

``covariance``  ``eigh`` of the ``C x C`` covariance: exact; cheap while ``C`` is small.
``gram``        ``eigh`` of the ``n x n`` Gram matrix: exact; cheap when there are fewer pixels than channels.
``randomized``  seeded randomised block Krylov iteration (Musco & Musco 2015) with every block kept for
                the Rayleigh-Ritz step, iterated until every kept component is within :data:`TOLERANCE` of
                the exact one (the sine of the angle between them, bounded by the Davis-Kahan theorem as
                the component's residual over its eigenvalue's gap to the others); where the gaps are too
                small for that within :data:`MAX_POWER_ITERATIONS` blocks, the exact solver runs instead.
                A few milliseconds for 1280-2048 channels, where an exact solver costs more than the
                forward pass.
``auto``        exact while ``min(n, C) <= 256``, else randomised (on one BLAS thread, the exact solvers
                cost 4x (512 channels) to 40x (2048 channels) more than the randomised one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .normalise import float64_sums

EXACT_LIMIT = 256
# The randomised solver's promise: sin(angle to the exact component) at most this, for every kept component.
TOLERANCE = 0.02
MAX_POWER_ITERATIONS = 12


@dataclass(frozen=True)
class PrincipalComponents:
    """A fitted PCA basis, named as scikit-learn names its fitted attributes.

    Attributes:
        mean: ``(C,)`` float64 channel means.
        components: ``(k, C)`` float64 unit loading vectors, strongest first; each row's largest-magnitude
            entry is positive, so colours do not flip between runs or BLAS builds.
        explained_variance: ``(k,)`` float64 variance along each component (``ddof=1``).
        total_variance: variance summed over all channels (``ddof=1``).
        n_samples: number of observations (pixels times images) fitted.
        solver: the solver that ran.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    total_variance: float
    n_samples: int
    solver: str

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        """``(k,)`` float64 share of the total variance explained by each component (0 when there is none)."""
        if self.total_variance <= 0.0:
            return np.zeros_like(self.explained_variance)
        return self.explained_variance / self.total_variance

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Project ``(n, C)`` observations onto the components: ``(X - mean) @ components.T``, ``(n, k)`` float64.

        These are the principal components ``U S`` of the paper (equivalently ``F' V``).
        """
        X = np.asarray(X, dtype=np.float64)
        return (X - self.mean) @ self.components.T


def fit_pca(X: np.ndarray, n_components: int = 3, solver: str = "auto", random_state: int = 0, **options) -> PrincipalComponents:
    """Fit the principal components of ``X``; see :func:`fit_transform_pca` for the arguments."""
    return fit_transform_pca(X, n_components, solver, random_state, **options)[0]


def fit_transform_pca(
    X: np.ndarray,
    n_components: int = 3,
    solver: str = "auto",
    random_state: int = 0,
    n_oversamples: int = 5,
    n_power_iterations: int = 1,
    copy: bool = True,
) -> tuple[PrincipalComponents, np.ndarray]:
    """Fit the principal components of ``X`` and project ``X`` onto them.

    Args:
        X: ``(n_samples, n_features)`` array, any float dtype; centred here per feature.
        n_components: number of components ``k``, at most ``min(n_samples, n_features)``.
        solver: one of :data:`SOLVERS`.
        random_state: seed of the randomised solver (results are identical run to run).
        n_oversamples, n_power_iterations: the randomised solver's block (``k + n_oversamples`` columns)
            and its fewest steps; it stops once its tolerance is met.
        copy: ``False`` lets ``X`` be centred in place when it is contiguous (C or Fortran order) and
            already of the working dtype (float32 for the randomised solver, float64 for the exact ones).

    Returns:
        The fitted :class:`PrincipalComponents` and the ``(n_samples, k)`` float64 principal components
        of ``X`` (the paper's ``U S``, equal to ``transform(X)``).
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D (n_samples, n_features) matrix, got shape {X.shape}")
    n, c = X.shape
    if not 1 <= n_components <= min(n, c):
        raise ValueError(
            f"n_components={n_components} exceeds what {n} observations of {c} channels can give "
            f"(at most {min(n, c)})"
        )
    solver = _solver_for(n, c, solver)
    mean = X.mean(axis=0, dtype=np.float64)  # of the input itself, before any narrowing
    if not np.isfinite(mean).all():
        raise ValueError("the features contain NaN or infinite values")
    # The randomised solver streams the data in float32 (its tolerance is far above float32 rounding);
    # means, variances and every eigen- or singular-value problem are float64.
    dtype = np.float32 if solver == "randomized" else np.float64
    Xc, total_variance = _centred(X, mean, dtype, copy)
    if not np.isfinite(total_variance):  # values beyond float32's range: stay in float64
        Xc, total_variance = _centred(X, mean, np.float64, copy=True)
    knobs = (n_oversamples, n_power_iterations, random_state)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow shows as inf and is retried below
        eigenvalues, components = _SOLVE[solver](Xc, n_components, *knobs)
    if not np.isfinite(eigenvalues).all():  # float32 products overflowed on huge features: redo in float64
        Xc = Xc.astype(np.float64)
        eigenvalues, components = _SOLVE[solver](Xc, n_components, *knobs)
    if components is None:  # the randomised solver could not reach TOLERANCE: the gaps are small
        solver = "covariance" if c <= n else "gram"
        Xc = Xc.astype(np.float64)
        eigenvalues, components = _SOLVE[solver](Xc, n_components)
    components = _fix_signs(components)
    explained = np.maximum(eigenvalues, 0.0) / max(n - 1, 1)
    scores = Xc @ components.T.astype(Xc.dtype)
    return PrincipalComponents(mean, components, explained, total_variance, n, solver), scores.astype(np.float64)


def _solver_for(n: int, c: int, solver: str) -> str:
    """The solver that runs for ``n`` observations of ``c`` channels (``auto``: see the module docstring)."""
    if solver == "auto":
        if min(n, c) > EXACT_LIMIT:
            return "randomized"
        return "covariance" if c <= n else "gram"
    if solver not in _SOLVE:
        raise ValueError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}")
    return solver


def _covariance(Xc: np.ndarray, k: int, *_knobs) -> tuple[np.ndarray, np.ndarray]:
    """``eigh`` of the ``C x C`` scatter: ``(k,)`` eigenvalues and ``(k, C)`` unit components."""
    eigenvalues, vectors = _top_eigh(Xc.T @ Xc, k)
    return eigenvalues, vectors.T


def _gram(Xc: np.ndarray, k: int, *_knobs) -> tuple[np.ndarray, np.ndarray]:
    """``eigh`` of the ``n x n`` Gram matrix, mapped back to ``(k, C)`` components."""
    eigenvalues, vectors = _top_eigh(Xc @ Xc.T, k)
    singular = np.sqrt(np.maximum(eigenvalues, 0.0))
    components = vectors.T @ Xc
    # Directions without variance (rank below k) stay zero rows: they project every pixel to 0.
    nonzero = singular > singular.max(initial=0.0) * 1e-12
    components[nonzero] /= singular[nonzero, None]
    components[~nonzero] = 0.0
    return eigenvalues, components.astype(np.float64)


def _centred(X: np.ndarray, mean: np.ndarray, dtype: type, copy: bool) -> tuple[np.ndarray, float]:
    """``X - mean`` as ``dtype`` (in place when ``copy`` is false and ``X`` already is that dtype), and the
    total variance (``ddof=1``) summed in float64; infinite only when ``X`` does not fit ``dtype`` (then
    ``X`` was copied, not changed, and the caller retries in float64)."""
    with np.errstate(over="ignore", invalid="ignore"):
        Xc = np.array(X, dtype=dtype, order="K", copy=copy or None)
        Xc -= mean.astype(dtype)
    return Xc, float64_sums(Xc, squares_only=True)[1] / max(len(X) - 1, 1)


def pca_from_covariance(
    mean: np.ndarray, covariance: np.ndarray, n_samples: int, n_components: int, random_state: int | None = None
) -> PrincipalComponents:
    """The top components of a ``(C, C)`` covariance (``ddof=1``), with the same sign rule: exact
    (``eigh``), or with ``random_state`` above :data:`EXACT_LIMIT` channels a seeded subspace iteration on
    the ``C x C`` matrix, iterated until every component is within :data:`TOLERANCE` of the exact one (as the
    randomised solver promises; ``eigh`` where the eigenvalues lie too close for that)."""
    c = covariance.shape[0]
    if not 1 <= n_components <= min(n_samples, c):
        raise ValueError(f"n_components={n_components} exceeds what {n_samples} observations of {c} channels can give")
    if not np.isfinite(covariance).all():
        raise ValueError("the features contain NaN or infinite values")
    found = _subspace(covariance, n_components, random_state) if random_state is not None and c > EXACT_LIMIT else None
    eigenvalues, vectors = found if found is not None else _top_eigh(covariance, n_components)
    total = float(np.trace(covariance))
    solver = "randomized" if found is not None else "covariance"
    return PrincipalComponents(mean, _fix_signs(vectors.T), np.maximum(eigenvalues, 0.0), total, n_samples, solver)


def _subspace(symmetric: np.ndarray, k: int, seed: int, oversamples: int = 10) -> tuple[np.ndarray, np.ndarray] | None:
    """Subspace iteration with Rayleigh-Ritz on a symmetric PSD matrix: ``(k,)`` values and ``(C, k)`` vectors
    once :func:`worst_angle` puts each within :data:`TOLERANCE`, ``None`` when it never does."""
    c = symmetric.shape[0]
    Q = np.random.default_rng(seed).standard_normal((c, min(k + oversamples, c)))
    for _ in range(MAX_POWER_ITERATIONS + 1):
        Q, _ = np.linalg.qr(symmetric @ Q)
        values, small = np.linalg.eigh(Q.T @ symmetric @ Q)
        values, vectors = values[::-1], Q @ small[:, ::-1]
        residuals = np.linalg.norm(symmetric @ vectors[:, :k] - vectors[:, :k] * values[:k], axis=0)
        if worst_angle(residuals, values, k) <= TOLERANCE:
            return values[:k], vectors[:, :k]
    return None


def _top_eigh(symmetric: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest eigenpairs of a symmetric matrix, largest first: ``(k,)`` values, ``(m, k)`` vectors."""
    m = symmetric.shape[0]
    values, vectors = scipy.linalg.eigh(symmetric, subset_by_index=(m - k, m - 1), check_finite=False)
    return values[::-1], vectors[:, ::-1]


def _randomized(Xc: np.ndarray, k: int, oversamples: int, least_steps: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Randomised block Krylov (Musco & Musco 2015) on the centred ``(n, C)`` matrix (float32 or float64):
    ``(k,)`` squared singular values and ``(k, C)`` right singular vectors, both float64, once
    :func:`worst_angle` puts every one within :data:`TOLERANCE` (after ``least_steps`` blocks or more);
    ``None`` for the vectors when it never does.

    Each step multiplies one block of ``k + oversamples`` columns by ``Xc^T Xc`` (one pass over ``Xc`` and
    one back, in its own dtype), keeps every block for the Rayleigh-Ritz step (a basis of ``Xc^T Xc``'s
    Krylov space, orthonormal in float64), and reads the residuals the stop needs off the products it has
    already made: no pass over ``Xc`` is spent on the test."""
    n, c = Xc.shape
    width = min(k + oversamples, n, c)
    room = min(n, c, width * (MAX_POWER_ITERATIONS + 1))
    basis, products = np.empty((c, room)), np.empty((c, room))  # V and Xc^T Xc V, float64
    block = Xc.T @ (Xc @ np.random.default_rng(seed).standard_normal((c, width)).astype(Xc.dtype))
    used, values = 0, np.zeros(k)
    for step in range(MAX_POWER_ITERATIONS + 1):
        if not np.isfinite(block).all():  # float32 products overflowed on huge features: the caller redoes it in float64
            return np.full(k, np.inf), None
        # The next block: the newest product, orthogonal to the basis (twice: one pass loses digits). What
        # is left of a column that lay in the basis is rounding: dropped. Nothing left: the space is
        # invariant (rank-deficient data), and the exact solver decides.
        block = block.astype(np.float64)
        before = np.linalg.norm(block, axis=0)
        for _ in range(2 if used else 0):
            block -= basis[:, :used] @ (basis[:, :used].T @ block)
        fresh = np.linalg.norm(block, axis=0) > 1e-8 * before
        if not fresh.any():
            break
        block = np.linalg.qr(block[:, fresh])[0]
        if used:  # once more after the QR: in float64 a column that was mostly rounding comes back skewed
            block = np.linalg.qr(block - basis[:, :used] @ (basis[:, :used].T @ block))[0]
        block = block[:, : room - used]
        added = block.shape[1]
        basis[:, used : used + added] = block
        products[:, used : used + added] = Xc.T @ (Xc @ block.astype(Xc.dtype))
        used += added
        if not np.isfinite(products[:, used - added : used]).all():
            return np.full(k, np.inf), None
        V, P = basis[:, :used], products[:, :used]
        small = V.T @ P
        values, W = np.linalg.eigh((small + small.T) / 2)
        values, W = values[::-1], W[:, ::-1]
        residuals = np.linalg.norm(P @ W[:, :k] - (V @ W[:, :k]) * values[:k], axis=0)
        whole = used == c  # the whole space: exact
        if whole or (step + 1 >= least_steps and worst_angle(residuals, values, k) <= TOLERANCE):
            return values[:k], (V @ W[:, :k]).T
        if used == room:
            break
        block = products[:, used - added : used]
    return values[:k], None


def angle_bound(Xc: np.ndarray, eigenvalues: np.ndarray, vectors: np.ndarray, k: int) -> float:
    """The largest sine of the angle between one of the first ``k`` approximate eigenvectors ``vectors``
    ``(m, C)`` of ``Xc^T Xc`` and the exact one: its residual over the gap from its approximate eigenvalue
    to the nearest other of ``eigenvalues`` ``(m,)`` (Davis-Kahan; infinite when two coincide).

    The gaps are those between the approximations (Ritz values), which lie at or below the true
    eigenvalues: an estimate that is close once the subspace has converged, not a strict bound before."""
    v = vectors[:k].T.astype(Xc.dtype)
    residuals = np.linalg.norm((Xc.T @ (Xc @ v)).astype(np.float64) - v.astype(np.float64) * eigenvalues[:k], axis=0)
    return worst_angle(residuals, eigenvalues, k)


def worst_angle(residuals: np.ndarray, eigenvalues: np.ndarray, k: int) -> float:
    """Davis-Kahan: the largest of the first ``k`` residual norms over the gap from that approximate
    eigenvalue to the nearest other of ``eigenvalues`` (infinite when two coincide)."""
    worst = 0.0
    for i in range(k):
        others = np.delete(eigenvalues, i)
        gap = float(np.min(np.abs(others - eigenvalues[i]))) if others.size else np.inf
        if residuals[i] > 0:
            worst = max(worst, float(residuals[i] / gap) if gap > 0 else np.inf)
    return worst


def _fix_signs(components: np.ndarray) -> np.ndarray:
    """Flip each ``(C,)`` row so that its largest-magnitude loading is positive (first one on ties)."""
    rows = np.arange(components.shape[0])
    strongest = components[rows, np.abs(components).argmax(axis=1)]
    return components * np.where(strongest < 0, -1.0, 1.0)[:, None]


_SOLVE = {"covariance": _covariance, "gram": _gram, "randomized": _randomized}
SOLVERS = ("auto", *_SOLVE)
