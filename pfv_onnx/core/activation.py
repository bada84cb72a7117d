"""Activation maps: the channel sum of a layer (eq. 1) and the total activation map ``A^b`` (eq. 2)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .parallel import in_parallel
from .upsample import resize_bilinear


def channel_sum(features: np.ndarray) -> np.ndarray:
    """Eq. 1, ``A_l^b(i, j) = sum_c F_l(b, c, i, j)``.

    Args:
        features: ``(B, C, h, w)`` feature map (channel axis 1, as every ONNX Conv/Pool input).

    Returns:
        ``(B, h, w)`` float32.
    """
    if features.ndim != 4:
        raise ValueError(f"expected a (B, C, h, w) feature map, got shape {features.shape}")
    return features.sum(axis=1, dtype=np.float32)


def total_activation(
    maps: Sequence[np.ndarray], size: tuple[int, int], out: np.ndarray | None = None, threads: int = 1
) -> np.ndarray:
    """Eq. 2, ``A^b = sum_l P(A_l^b; H0, W0)``: the raw channel-sum maps upsampled and added, not normalised.

    Args:
        maps: one ``(B, h_l, w_l)`` channel-sum map per tapped layer before the final one.
        size: ``(H0, W0)``, the input image size.
        out: a ``(B, H0, W0)`` float32 array to write into.
        threads: threads sharing the images.

    Returns:
        ``(B, H0, W0)`` float32 (``out`` when given).
    """
    if not maps:
        raise ValueError("total_activation needs at least one map")
    batch = maps[0].shape[0]
    if out is None:
        out = np.empty((batch, *size), dtype=np.float32)

    def images(part: range) -> None:
        scratch = np.empty(size, dtype=np.float32)
        for b in part:
            add_upsampled([m[b] for m in maps], size, out[b], scratch)

    in_parallel(images, batch, threads)
    return out


def add_upsampled(maps: Sequence[np.ndarray], size: tuple[int, int], out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Eq. 2 for one image: ``out = sum_l P(A_l; H0, W0)`` for ``(h_l, w_l)`` maps; ``scratch`` is
    ``(H0, W0)`` float32 working space. Returns ``out``."""
    resize_bilinear(maps[0][None], size, out=out[None])
    for m in maps[1:]:
        resize_bilinear(m[None], size, out=scratch[None])
        out += scratch
    return out
