"""Gradient-free saliency baselines from the same single forward pass, for comparison with PFV.

``eigen_cam``  EigenCAM (Muhammad & Yeasin, IJCNN 2020): per image, the first principal component of
               ``F_N``'s pixels (centred per channel), made non-negative.
``class_activation_maps``  CAM (Zhou et al., CVPR 2016): ``sum_c W[k, c] F_N(c, i, j)`` for the head's weights
               ``W`` of class ``k``, for networks whose head is global average pooling and one linear layer.

Both are upsampled bilinearly to the input size and min-max scaled to ``[0, 1]`` per map, as their authors
show them. Two controls that know nothing of the image, for a benchmark to be checked against:

``centre_gaussian``  the centre bias: a Gaussian at the image's centre
``random_maps``      seeded uniform noise, which must score as chance
"""

from __future__ import annotations

import numpy as np

from .upsample import resize_bilinear


def _unit_range(maps: np.ndarray) -> np.ndarray:
    """Min-max scale each ``(H, W)`` map of a ``(..., H, W)`` array to ``[0, 1]`` (a flat map becomes 0)."""
    lo = maps.min(axis=(-2, -1), keepdims=True)
    span = maps.max(axis=(-2, -1), keepdims=True) - lo
    return np.where(span > 0, (maps - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)


def eigen_cam(final: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """EigenCAM of each image: ``(B, C, h, w)`` features to ``(B, H, W)`` float32 maps in ``[0, 1]``.

    The sign of a principal component is arbitrary; it is chosen so that the projection correlates
    positively with the image's channel-sum map (high where the network responds), then negatives are cut.
    """
    batch, channels, height, width = final.shape
    out = np.empty((batch, height, width), np.float32)
    for b in range(batch):
        X = final[b].reshape(channels, -1).T.astype(np.float64)
        Xc = X - X.mean(axis=0)
        _, _, vt = np.linalg.svd(Xc, full_matrices=False)
        projection = Xc @ vt[0]
        if np.dot(projection, X.sum(axis=1) - X.sum(axis=1).mean()) < 0:
            projection = -projection
        out[b] = np.maximum(projection, 0).reshape(height, width)
    return _unit_range(resize_bilinear(out, size))


def class_activation_maps(final: np.ndarray, weight: np.ndarray, classes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """CAMs of the given classes: ``(B, C, h, w)`` features, ``(K, C)`` head weights and ``(B, n)`` class
    indices to ``(B, n, H, W)`` float32 maps in ``[0, 1]`` (negative evidence cut)."""
    batch, channels, height, width = final.shape
    classes = np.asarray(classes)
    maps = np.einsum("bnc,bchw->bnhw", weight[classes].astype(np.float32), final.astype(np.float32))
    up = resize_bilinear(np.maximum(maps, 0).reshape(-1, height, width), size)
    return _unit_range(up.reshape(batch, classes.shape[1], *size))


def centre_gaussian(batch: int, size: tuple[int, int], spread: float = 0.25) -> np.ndarray:
    """``(B, H, W)`` float32: a Gaussian at the centre, its standard deviation ``spread`` of each side."""
    height, width = size
    y = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / (spread * height)
    x = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / (spread * width)
    one = np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)
    return np.broadcast_to(one, (batch, height, width)).copy()


def random_maps(batch: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """``(B, H, W)`` float32 uniform noise in ``[0, 1)``, seeded."""
    return np.random.default_rng(seed).random((batch, *size), dtype=np.float32)
