"""Eq. 5: the principal components upsampled to the input size and weighted by where the network responds.

For one image with components ``S = F' V`` (``h x w x k``, at ``F_N``'s resolution), the paper weights by
the total activation map ``A^b`` (eq. 2)::

    PFV^b = P(S; H0, W0) * A^b

and the reference code's hierarchical variant weights layer by layer, from the last earlier layer to the
first, each channel-sum map divided by its largest magnitude in the batch::

    W = S;   W = P(W; h_l, w_l) * A_l^b / max |A_l|   for l = N-1, ..., 1;   PFV^b = P(W; H0, W0)

``P`` is bilinear upsampling. :func:`weigh` does this image by image, with the statistics of the joint
normalisation (eq. 6) gathered while each image is in cache; the images are shared between threads.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .normalise import ValueStats
from .parallel import in_parallel
from .upsample import resize_image

RGB = 3


def by_activation(scores: np.ndarray, activation: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Eq. 5 for one image: ``(h, w, k)`` float32 components upsampled to the ``(H0, W0)`` of ``activation``
    and multiplied by it. Returns ``(H0, W0, k)`` float32 (``out`` when given)."""
    return _times(resize_image(scores, activation.shape, out), activation)


def by_layers(
    scores: np.ndarray, maps: Sequence[np.ndarray], peaks: Sequence[float], size: tuple[int, int], out: np.ndarray | None = None
) -> np.ndarray:
    """The hierarchical eq. 5 for one image: ``(h, w, k)`` float32 components weighted by each ``(h_l, w_l)``
    channel-sum map divided by its ``peak``, from the last map to the first, then upsampled to ``size``.
    Returns ``(H0, W0, k)`` float32 (``out`` when given)."""
    weighted = scores
    for layer, peak in zip(reversed(maps), reversed(peaks)):
        weighted = _times(resize_image(weighted, layer.shape), layer * np.float32(1.0 / peak))
    return resize_image(weighted, size, out)


def weigh(
    scores: np.ndarray,
    size: tuple[int, int],
    activation: np.ndarray | None = None,
    maps: Sequence[np.ndarray] = (),
    peaks: Sequence[float] | None = None,
    threads: int = 1,
) -> tuple[np.ndarray, ValueStats]:
    """Eq. 5 for a batch, by :func:`by_activation`, or by :func:`by_layers` when ``peaks`` are given.

    Args:
        scores: ``(B, h, w, k)`` float32 components, ``k <= 3``.
        size: ``(H0, W0)``.
        activation: ``(B, H0, W0)`` float32 ``A^b`` (for the paper's weighting).
        maps, peaks: ``(B, h_l, w_l)`` channel-sum maps and one positive divisor each (hierarchical).
        threads: threads sharing the images.

    Returns:
        ``(B, H0, W0, 3)`` float32 weighted components (channels past ``k`` are 0, not normalised), and the
        :class:`ValueStats` of the weighted values, merged in image order.
    """
    batch, k = scores.shape[0], scores.shape[-1]
    # Written straight into the output when all three colours are used; a missing colour stays black (0).
    rgb = (np.empty if k == RGB else np.zeros)((batch, *size, RGB), dtype=np.float32)
    stats = [ValueStats()] * batch

    def images(part: range) -> None:
        for b in part:
            out = rgb[b] if k == RGB else None
            if peaks is None:
                weighted = by_activation(scores[b], activation[b], out)
            else:
                weighted = by_layers(scores[b], [m[b] for m in maps], peaks, size, out)
            if out is None:
                rgb[b, ..., :k] = weighted
            stats[b] = ValueStats.of_image(weighted)

    in_parallel(images, batch, threads)
    return rgb, ValueStats.merged(stats)


def _times(target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``target *= weight[..., None]`` for ``(H, W, k)`` and ``(H, W)`` float32 arrays; returns ``target``.
    NumPy's broadcast over a last axis of 3 is 4x slower than OpenCV's channel-wise product with the weight
    copied to each channel (the same float32 products)."""
    if target.shape[-1] == RGB:
        return cv2.multiply(target, cv2.cvtColor(weight, cv2.COLOR_GRAY2RGB), dst=target)
    target *= weight[..., None]
    return target
