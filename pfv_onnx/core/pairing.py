"""Do an evaluation's masks belong to their images? A permutation test on the maps' ROC-AUCs.

Each map is scored against its image's own mask and against the masks of a few other images, what a
wrong pairing of images and masks would score. The best map's lead over the wrong masks is compared with
the best lead of many seeded wrong pairings: choosing the best of many noisy maps cannot pass for a lead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The masks' check scores each map against the masks of up to MASK_OTHERS other images (all of them in a
# smaller set), spread over the set: what a wrong pairing of images and masks scores. Each costs one sum
# over a map ranked once. MASK_PAIRINGS wrong pairings (seeded) show how far the best map leads by chance;
# the real pairing must lead further than all but MASK_P_VALUE of them.
MASK_OTHERS = 8
MASK_PAIRINGS = 2000
MASK_P_VALUE = 0.01


def other_images(count: int) -> np.ndarray:
    """``(count, K)`` int: for each of ``count`` images, the K = min(:data:`MASK_OTHERS`, count - 1) others
    whose masks it is also scored against, spread evenly over the set (the next one first)."""
    k = min(MASK_OTHERS, count - 1)
    offsets = 1 + np.arange(k) * (count - 1) // max(k, 1)
    return (np.arange(count)[:, None] + offsets[None, :]) % count


def mask_check(aucs: np.ndarray, seed: int = 0) -> dict[str, Any] | None:
    """Do the masks belong to their images? ``aucs`` ``(n, M, 1 + K)`` float64: each image's ROC-AUC of each
    of M maps against its own mask, then against the masks of K other images (:func:`other_images`).
    ``None`` when there is no other image; else ``best``, the index of the map that leads most, its
    ``own_auc``, ``other_auc`` and ``lead``, the ``p_value`` and the number of ``other_masks``.

    A map's lead is its mean ROC-AUC against the images' own masks minus that against the other images'.
    The best map's lead is set against the best lead of :data:`MASK_PAIRINGS` wrong pairings, in which each
    image takes one of its 1 + K masks, drawn at random, for its own (seeded): ``p_value`` is the share of
    them (the real pairing counted too) that lead as far. Taking the best map of each wrong pairing too is
    what keeps the choice among many noisy maps from passing for a lead.
    """
    count, _, choices = aucs.shape
    if choices < 2:
        return None
    by_mask = aucs.transpose(0, 2, 1)  # (n, 1 + K, M)
    total = by_mask.sum(axis=1)  # (n, M)

    def leads(own: np.ndarray) -> np.ndarray:
        """``(P, M)``: each map's mean lead when image i takes its mask ``own[p, i]`` for its own."""
        chosen = by_mask[np.arange(count), own]  # (P, n, M)
        return (chosen - (total - chosen) / (choices - 1)).mean(axis=1)

    observed = leads(np.zeros((1, count), np.int64))[0]
    best = int(np.argmax(observed))
    rng = np.random.default_rng(seed)
    per_part = max(1, 2**22 // (count * aucs.shape[1]))  # a few tens of MB at a time
    chance = np.concatenate([
        leads(rng.integers(choices, size=(min(per_part, MASK_PAIRINGS - done), count))).max(axis=1)
        for done in range(0, MASK_PAIRINGS, per_part)
    ])
    own = float(by_mask[:, 0, best].mean())
    return {
        "best": best,
        "own_auc": round(own, 4),
        "other_auc": round(own - float(observed[best]), 4),
        "lead": round(float(observed[best]), 4),
        "p_value": round((1 + int((chance >= observed[best]).sum())) / (1 + MASK_PAIRINGS), 4),
        "other_masks": choices - 1,
    }


def min_mask_images() -> int:
    """The fewest images whose masks :func:`mask_check` can tell from a wrong pairing: n images with K others
    each pair in (1 + K)^n ways, the real one among them, so a p-value below :data:`MASK_P_VALUE` needs
    more ways than 1 / MASK_P_VALUE (4 images: 256 ways; 3: only 27)."""
    count = 2
    while min(count, MASK_OTHERS + 1) ** count * MASK_P_VALUE < 1:
        count += 1
    return count
