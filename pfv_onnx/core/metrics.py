"""Numbers about PFV pictures and maps: foregrounds, colour distributions, similarity measures.

``foreground``          the pixels where the network responds most (by the activation map)
``colour_distribution`` the share of red, green and blue (components 1, 2, 3) over a foreground
``rank_correlation``    Spearman's rho between two maps
``ssim``                the structural similarity of Wang et al. (2004) between two pictures
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.stats import spearmanr

from .relevance import BORDER

# The foreground is the share of an image's pixels with the highest activation map values, away from the
# border (relevance.BORDER) where zero padding inflates every convolution's response.
FOREGROUND_SHARE = 0.3


def foreground(activation: np.ndarray, share: float = FOREGROUND_SHARE) -> np.ndarray:
    """``(H, W)`` bool mask of the ``share`` of the image's pixels with the highest activation (ties
    included), taken inside the border of :data:`~pfv_onnx.core.relevance.BORDER` of each side.

    A fixed share per image, rather than a threshold on the values, keeps images with weak and strong
    responses comparable: each contributes its own most active region.
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    height, width = activation.shape
    dy, dx = int(height * BORDER), int(width * BORDER)
    inner = np.zeros(activation.shape, bool)
    inner[dy : height - dy, dx : width - dx] = True
    values = activation[inner]
    # The share is of the whole image; the inner part holds it all.
    threshold = np.quantile(values, max(0.0, 1.0 - share * activation.size / values.size))
    return inner & (activation >= threshold)


def colour_distribution(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(3,)`` float64 shares of red, green and blue summed over the masked pixels of an ``(H, W, 3)``
    picture; they sum to 1 (a black foreground gives equal thirds)."""
    totals = rgb[mask].astype(np.float64).sum(axis=0)
    total = totals.sum()
    return totals / total if total > 0 else np.full(3, 1.0 / 3.0)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equally shaped arrays (0 when either is constant)."""
    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b)[0])


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) of two ``(H, W)`` or ``(H, W, C)``
    pictures: an 11 x 11 Gaussian window of sigma 1.5, ``K1 = 0.01``, ``K2 = 0.03``, averaged over channels."""
    if a.shape != b.shape:
        raise ValueError(f"ssim needs pictures of one shape, got {a.shape} and {b.shape}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(index.mean())
