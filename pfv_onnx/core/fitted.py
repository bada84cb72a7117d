"""A fitted basis: PFV's colours fixed once on a dataset, so they mean the same in every batch.

The paper's colours are relative to each batch: its PCA, its layer maxima and its normalisation are
re-estimated per batch, so two batches cannot be compared. Fitting estimates all three on a dataset of any
size, in two passes over it:

1. :class:`FeatureMoments` accumulate the channel means and the ``C x C`` scatter matrix of ``F_N``'s pixels
   in float64, merged across batches with the pairwise update of Chan, Golub & LeVeque (1979), which stays
   accurate however many pixels are merged; also the largest channel sum of every tapped layer.
   :meth:`FeatureMoments.basis` turns them into the components (``eigh`` of the covariance, signs fixed).
2. The weighted components of every image under that basis give the normalisation statistics
   (:class:`pfv_onnx.core.normalise.ValueStats`, exact sums, also mergeable).

Both kinds of partial result merge in any order and any grouping, so the fit of many batches equals the fit
of their concatenation up to float64 rounding, and can run on many machines.
"""

from __future__ import annotations

import hashlib
from dataclasses import astuple, dataclass, replace

import numpy as np

from .decomposition import PrincipalComponents, pca_from_covariance
from .normalise import Scaling, ValueStats


@dataclass(frozen=True)
class FeatureMoments:
    """Mergeable first and second moments of ``F_N``'s pixels and the layers' largest channel sums.

    Attributes:
        count: pixels (observations) seen.
        mean: ``(C,)`` float64 channel means.
        scatter: ``(C, C)`` float64 sum of outer products of the centred pixels.
        layer_peaks: per layer weighting the components, the largest ``|A_l|`` seen.
        images: images seen.
    """

    count: int
    mean: np.ndarray
    scatter: np.ndarray
    layer_peaks: tuple[float, ...]
    images: int

    @classmethod
    def of(cls, X: np.ndarray, sources: list[np.ndarray], images: int) -> FeatureMoments:
        """The moments of one batch: ``X`` its ``(n, C)`` pixel matrix, ``sources`` its layer maps."""
        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        if not np.isfinite(mean).all():
            raise ValueError("the features contain NaN or infinite values")
        centred = X - mean
        peaks = tuple(float(np.abs(m).max()) for m in sources)
        return cls(len(X), mean, centred.T @ centred, peaks, images)

    def merge(self, other: FeatureMoments) -> FeatureMoments:
        if self.mean.shape != other.mean.shape or len(self.layer_peaks) != len(other.layer_peaks):
            raise ValueError("cannot merge moments of different layers")
        count = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / count)
        scatter = self.scatter + other.scatter + np.outer(delta, delta) * (self.count * other.count / count)
        peaks = tuple(max(a, b) for a, b in zip(self.layer_peaks, other.layer_peaks))
        return FeatureMoments(count, mean, scatter, peaks, self.images + other.images)

    def basis(self, n_components: int, hierarchical: bool, n_sigma: float, weighting: str = "paper") -> FittedBasis:
        """The components of these moments; the normalisation is fitted in the second pass."""
        pca = pca_from_covariance(self.mean, self.scatter / max(self.count - 1, 1), self.count, n_components)
        first = float(pca.explained_variance[0]) if n_components else 0.0
        prescale = 1.0 / np.sqrt(first) if first > 0 else 1.0
        peaks = tuple(p if p > 0 else 1.0 for p in self.layer_peaks)
        return FittedBasis(pca, float(prescale), peaks, hierarchical, n_sigma, None, self.images, weighting=weighting)


@dataclass(frozen=True)
class FittedBasis:
    """Everything that fixes PFV's colours.

    Attributes:
        pca: the components (and channel means) of ``F_N``.
        prescale: positive factor on the scores before weighting (1 / the first component's std), fixed so
            the normalisation statistics mean the same in every batch.
        layer_peaks: the largest value of each of the weighting's sources (divisors of the hierarchical and
            focus weightings).
        hierarchical: whether the normalisation was fitted for the hierarchical weighting.
        n_sigma: the clip of the normalisation.
        scaling: the normalisation (``None`` between the two passes of a fit).
        images: images fitted.
        activation: statistics of the weighting map over the fitted images, so that pictures of it share
            one scale in every batch too (``None`` between the passes).
        weighting: the weighting the normalisation was fitted for (:mod:`pfv_onnx.core.activation`).
    """

    pca: PrincipalComponents
    prescale: float
    layer_peaks: tuple[float, ...]
    hierarchical: bool
    n_sigma: float
    scaling: Scaling | None
    images: int
    activation: ValueStats | None = None
    weighting: str = "paper"

    def project(self, final: np.ndarray) -> np.ndarray:
        """``(B, C, h, w)`` features to ``(B, h, w, k)`` float32 principal components under this basis."""
        if final.shape[1] != self.pca.mean.shape[0]:
            raise ValueError(f"the basis has {self.pca.mean.shape[0]} channels, the features {final.shape[1]}")
        batch, _, height, width = final.shape
        X = final.transpose(0, 2, 3, 1).reshape(-1, final.shape[1])
        scores = (X.astype(np.float64) - self.pca.mean) @ self.pca.components.T
        return scores.astype(np.float32).reshape(batch, height, width, -1)

    def with_statistics(self, weighted: ValueStats, activation: ValueStats) -> FittedBasis:
        """The basis completed by the second pass: the normalisation of the weighted components, and the
        statistics of the activation map."""
        return replace(self, scaling=weighted.scaling(self.n_sigma), activation=activation)

    def components_scaling(self) -> Scaling:
        """The normalisation of the unweighted components, fixed by the fit: their mean over the fitted pixels
        is 0 and their joint spread the root mean of the shown components' variances."""
        shown = self.pca.explained_variance[:3]
        spread = float(np.sqrt(np.mean(shown))) if len(shown) else 0.0
        return Scaling(0.0, spread, -self.n_sigma * spread, self.n_sigma * spread)

    def fingerprint(self) -> str:
        """A short hash of the components, layer weights and normalisation: equal bases, equal colours."""
        digest = hashlib.sha256(np.ascontiguousarray(self.pca.components).tobytes())
        digest.update(np.array([self.prescale, *self.layer_peaks, *(astuple(self.scaling) if self.scaling else ())], dtype=np.float64).tobytes())
        return digest.hexdigest()[:16]
