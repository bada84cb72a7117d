"""How well a saliency map points at an object, and how faithful it is to the model: numbers on arrays.

Localisation, for an ``(H, W)`` map and an ``(H, W)`` bool mask of the object:

``pointing``     whether the map's maximum lies inside the mask (the pointing game of Zhang et al. 2016)
``on_border``    whether the maximum lies in the outer 1/16 of the image, where zero padding inflates responses
                 (both count a tie between several maxima by the share of them that lies there)
``roc_auc``      the probability that a pixel of the object outranks one of the background (ties count half)
``mass_ratio``   the share of the map's mass (its values above their minimum) inside the mask, over the
                 share of the image the mask covers: 1 for a map that ignores the object, more when it points
``localisation`` all four of one map for one mask, as an evaluation reports them

Faithfulness (Petsiuk et al. 2018): ``deletion_order`` ranks the pixels most salient first; the caller
removes (or restores) them in ``steps`` equal parts, runs the model, and ``curve_area`` integrates the top
class's probability over the fraction changed.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

# The outer 1/16 of each side: zero padding inflates every convolution's response along the image's edges, so
# a map that peaks there points at the padding, not at the image (foregrounds are taken inside it too).
BORDER = 1 / 16


def border_mask(shape: tuple[int, int], share: float = BORDER) -> np.ndarray:
    """``(H, W)`` bool, true on the outer ``share`` of each side."""
    height, width = shape
    dy, dx = max(1, int(round(height * share))), max(1, int(round(width * share)))
    mask = np.ones(shape, bool)
    mask[dy : height - dy, dx : width - dx] = False
    return mask


def peaks(saliency: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: where the map takes its largest value (several pixels when a map is clipped)."""
    return saliency == saliency.max()


def pointing(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Whether the map's largest value lies inside the mask: 1 or 0, or on a tie the share of the largest
    pixels inside (what a random choice among them scores on average)."""
    return float(mask[peaks(saliency)].mean())


def on_border(saliency: np.ndarray, share: float = BORDER) -> float:
    """Whether the map's largest value lies on the outer ``share`` of the image (on a tie, the share of
    the largest pixels there)."""
    return float(border_mask(saliency.shape, share)[peaks(saliency)].mean())


def localisation(saliency: np.ndarray, mask: np.ndarray, aucs: np.ndarray | None = None) -> dict[str, float]:
    """The localisation metrics of one ``(H, W)`` map for one ``(H, W)`` bool mask. ``aucs``, when given, are
    the map's ROC-AUCs against that mask and then against other images' (:func:`roc_aucs`);
    ``other_auc`` is the mean of the latter, what a wrong pairing of images and masks scores."""
    aucs = roc_aucs(saliency, mask[None]) if aucs is None else aucs
    scores = {
        "pointing": float(pointing(saliency, mask)),
        "border": float(on_border(saliency)),
        "auc": float(aucs[0]),
        "mass": mass_ratio(saliency, mask),
    }
    if len(aucs) > 1:
        scores["other_auc"] = float(np.mean(aucs[1:]))
    return scores


def roc_auc(saliency: np.ndarray, mask: np.ndarray) -> float:
    """ROC-AUC of the map's values as a score for the mask's pixels (Mann-Whitney U over all pixel pairs,
    ties counted half): 1 for a map higher on every object pixel, 0.5 for one that does not tell."""
    return float(roc_aucs(saliency, np.asarray(mask)[None])[0])


def roc_aucs(saliency: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """:func:`roc_auc` of one ``(H, W)`` map for each of ``(K, H, W)`` bool masks: ``(K,)`` float64. The map
    is ranked once; each mask then costs one sum, ``AUC = (sum of the object's ranks - P (P + 1) / 2) / (P N)``
    for ``P`` object and ``N`` background pixels."""
    values = np.ravel(saliency).astype(np.float64)
    inside = np.reshape(masks, (len(masks), values.size)).astype(bool)
    positives = inside.sum(axis=1)
    negatives = values.size - positives
    if not (positives.all() and negatives.all()):
        raise ValueError("the mask must hold some pixels and leave some out")
    ranks = rankdata(values)
    sums = np.array([ranks[m].sum() for m in inside])
    return (sums - positives * (positives + 1) / 2) / (positives * negatives)


def mass_ratio(saliency: np.ndarray, mask: np.ndarray) -> float:
    """The share of the map's mass inside the mask over the share of the image it covers (the map shifted
    to start at 0); 1 for a constant map."""
    mass = np.asarray(saliency, np.float64) - float(np.min(saliency))
    area = float(np.mean(mask))
    total = float(mass.sum())
    if total <= 0:
        return 1.0
    return float(mass[mask].sum() / total / area)


def deletion_order(saliency: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat pixel indices, most salient first; ties in a seeded random order (so a constant map deletes
    pixels at random, not row by row)."""
    flat = np.ravel(saliency).astype(np.float64)
    tie_breaker = np.random.default_rng(seed).random(flat.size)
    return np.lexsort((tie_breaker, -flat))


def steps_masks(order: np.ndarray, shape: tuple[int, int], steps: int) -> np.ndarray:
    """``(steps + 1, H, W)`` bool: at step ``k``, the first ``k / steps`` of ``order`` marked."""
    count = order.size
    rank = np.empty(count, np.int64)
    rank[order] = np.arange(count)
    bounds = np.round(np.linspace(0, count, steps + 1)).astype(np.int64)
    return (rank[None, :] < bounds[:, None]).reshape(steps + 1, *shape)


def curve_area(probabilities: np.ndarray) -> float:
    """Area under a curve of probabilities sampled at equal steps from 0 to 1 (trapezoids)."""
    p = np.asarray(probabilities, np.float64)
    return float((p[:-1] + p[1:]).sum() / 2 / (len(p) - 1)) if len(p) > 1 else float(p[0])
