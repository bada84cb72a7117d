"""Joint normalisation of the weighted components of a whole batch (paper eq. 6, reference ``n_sigma = 1``).

The paper whitens with one mean ``mu`` and one standard deviation ``sigma`` over every value of every image
and channel, clips to ``[-n_sigma, n_sigma]`` and min-max scales to ``[0, 1]``. That equals a single affine
map followed by a clip, ``clip((x - lo) / (hi - lo), 0, 1)`` with ``lo = max(min x, mu - n_sigma sigma)`` and
``hi = min(max x, mu + n_sigma sigma)``, which touches the large array once instead of five times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

# A batch without contrast (every value equal) has no colour to show: it becomes mid grey.
FLAT_VALUE = 0.5
_ROW = 4096


@dataclass(frozen=True)
class Scaling:
    """The affine map of :func:`normalise`: ``clip((x - lo) / (hi - lo), 0, 1)``; ``hi == lo`` means flat."""

    mean: float
    std: float
    lo: float
    hi: float

    @property
    def neutral(self) -> float:
        """The value 0 maps to: where the weighting is 0, the picture is this grey."""
        return float(np.clip(-self.lo / (self.hi - self.lo), 0.0, 1.0)) if self.hi > self.lo else FLAT_VALUE


@dataclass(frozen=True)
class ValueStats:
    """Running statistics of a set of values: count, sum, sum of squares (float64), minimum, maximum.

    Merging is exact and order-free up to float64 rounding, so the normalisation of many batches (or of
    many machines' shares) is the same as that of their concatenation.
    """

    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    lo: float = np.inf
    hi: float = -np.inf

    @classmethod
    def of(cls, x: np.ndarray) -> ValueStats:
        """The statistics of every value of ``x`` (any shape, any float dtype)."""
        flat = x.ravel(order="K")
        if flat.size == 0:
            return cls()
        total, squares = float64_sums(flat)
        return cls(flat.size, total, squares, float(flat.min()), float(flat.max()))

    @classmethod
    def of_image(cls, x: np.ndarray) -> ValueStats:
        """The statistics of an ``(H, W, k)`` float32 image (``k <= 4``): OpenCV's float64 sums, one pass for
        the mean and spread and two cheap ones for the extremes."""
        means, stds = cv2.meanStdDev(x)
        pixels = x.shape[0] * x.shape[1]
        total, squares = pixels * float(means.sum()), pixels * float((stds**2 + means**2).sum())
        return cls(x.size, total, squares, float(x.min()), float(x.max()))

    @classmethod
    def merged(cls, parts: Iterable[ValueStats]) -> ValueStats:
        """The statistics of several sets merged in the given order (so the sums do not depend on how the
        sets were computed)."""
        total = cls()
        for part in parts:
            total = total.merge(part)
        return total

    def merge(self, other: ValueStats) -> ValueStats:
        return ValueStats(
            self.count + other.count, self.total + other.total, self.squares + other.squares,
            min(self.lo, other.lo), max(self.hi, other.hi),
        )

    def mean_std(self) -> tuple[float, float]:
        """The mean and the (population) standard deviation of the values."""
        if self.count <= 0:
            raise ValueError("cannot normalise an empty array")
        mean = self.total / self.count
        return mean, float(np.sqrt(max(self.squares / self.count - mean * mean, 0.0)))

    def scaling(self, n_sigma: float = 1.0) -> Scaling:
        """The joint normalisation of these values (see the module docstring)."""
        if not n_sigma > 0:
            raise ValueError(f"n_sigma must be positive, got {n_sigma}")
        mean, std = self.mean_std()
        if not (np.isfinite(mean) and np.isfinite(std) and np.isfinite(self.lo) and np.isfinite(self.hi)):
            raise ValueError("the weighted components contain NaN or infinite values")
        return Scaling(mean, std, max(self.lo, mean - n_sigma * std), min(self.hi, mean + n_sigma * std))


def float64_sums(x: np.ndarray, squares_only: bool = False) -> tuple[float, float]:
    """The sum (0 when ``squares_only``) and the sum of squares of every value of a float array, in float64.

    Sums over rows of a few thousand values in the array's own dtype, then their float64 totals: within
    1e-6 of float64 sums over everything, at a third of the cost. Sums beyond float32's range are redone
    in float64.
    """
    flat = x.ravel(order="K")  # a view of a C- or Fortran-ordered array
    if flat.dtype not in (np.float32, np.float64):
        flat = flat.astype(np.float32)
    cut = flat.size - flat.size % _ROW
    rows = [part for part in (flat[:cut].reshape(-1, _ROW), flat[cut:].reshape(1, -1)) if part.size]
    with np.errstate(over="ignore", invalid="ignore"):
        total = 0.0 if squares_only else sum(float(part.sum(axis=1).sum(dtype=np.float64)) for part in rows)
        squares = sum(float(np.einsum("ij,ij->i", part, part).sum(dtype=np.float64)) for part in rows)
    if not (np.isfinite(total) and np.isfinite(squares)):
        total = 0.0 if squares_only else float(flat.sum(dtype=np.float64))
        squares = float(np.einsum("i,i->", flat, flat, dtype=np.float64))
    return total, squares


def scaling(x: np.ndarray, n_sigma: float = 1.0) -> Scaling:
    """The statistics of the joint normalisation of ``x`` (any shape), summed into float64 (see
    :meth:`ValueStats.of`)."""
    return ValueStats.of(x).scaling(n_sigma)


def apply_scaling(x: np.ndarray, s: Scaling, out: np.ndarray | None = None) -> np.ndarray:
    """``clip((x - lo) / (hi - lo), 0, 1)`` as float32 (into ``out`` when given; it may be ``x`` itself)."""
    if out is None:
        out = np.empty(x.shape, dtype=np.float32)
    # The span as float32 arithmetic gives it, so that the largest value maps to exactly 1.
    lo = np.float32(s.lo)
    span = np.float32(s.hi) - lo
    if not span > 0.0:
        out[...] = FLAT_VALUE
        return out
    np.subtract(x, lo, out=out)
    np.divide(out, span, out=out)
    return np.clip(out, 0.0, 1.0, out=out)


def normalise(x: np.ndarray, n_sigma: float = 1.0) -> np.ndarray:
    """Whiten jointly, clip at ``n_sigma``, min-max to ``[0, 1]``; same shape as ``x``, float32."""
    return apply_scaling(x, scaling(x, n_sigma))
