"""Synthetic features with a clear spectrum."""

from __future__ import annotations

import numpy as np


def spiked_features(batch=4, channels=24, size=6, rank=5, seed=0, dtype=np.float32) -> np.ndarray:
    """``(B, C, h, w)`` features: a few strong, well separated directions plus noise (a clear eigen-gap)."""
    rng = np.random.default_rng(seed)
    n = batch * size * size
    strength = np.geomspace(8.0, 2.0, rank)
    signal = (rng.standard_normal((n, rank)) * strength) @ rng.standard_normal((rank, channels))
    X = signal + 0.3 * rng.standard_normal((n, channels)) + 1.5
    return X.reshape(batch, size, size, channels).transpose(0, 3, 1, 2).astype(dtype)
