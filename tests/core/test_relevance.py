"""The localisation and faithfulness numbers on small maps and masks, against direct computations."""

from __future__ import annotations

import numpy as np
import pytest

from pfv_onnx.core import relevance


def square_mask(shape=(32, 40), box=(8, 20, 10, 30)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    top, bottom, left, right = box
    mask[top:bottom, left:right] = True
    return mask


def test_a_perfect_map_an_inverted_one_and_a_constant_one():
    mask = square_mask()
    perfect = mask.astype(float) + np.random.default_rng(0).random(mask.shape) * 0.1
    assert relevance.roc_auc(perfect, mask) == 1.0 and relevance.pointing(perfect, mask) == 1.0 and relevance.on_border(perfect) == 0.0
    assert relevance.roc_auc(-perfect, mask) == 0.0 and relevance.pointing(-perfect, mask) == 0.0
    constant = np.ones(mask.shape)
    assert relevance.roc_auc(constant, mask) == 0.5 and relevance.mass_ratio(constant, mask) == 1.0
    # Every pixel ties for the maximum: pointing scores what a random pick among them would, on average.
    assert relevance.pointing(constant, mask) == pytest.approx(mask.mean())
    assert relevance.on_border(constant) == pytest.approx(relevance.border_mask(mask.shape).mean())
    assert relevance.mass_ratio(mask.astype(float), mask) == pytest.approx(1 / mask.mean())


def test_roc_auc_equals_the_share_of_ordered_pairs():
    rng = np.random.default_rng(1)
    saliency = np.round(rng.random((12, 14)), 1)  # many ties
    mask = rng.random((12, 14)) < 0.3
    inside, outside = saliency[mask], saliency[~mask]
    pairs = (inside[:, None] > outside[None, :]).mean() + 0.5 * (inside[:, None] == outside[None, :]).mean()
    assert relevance.roc_auc(saliency, mask) == pytest.approx(pairs)


def test_border_and_peak():
    saliency = np.zeros((32, 32))
    saliency[0, 31] = 1
    assert relevance.on_border(saliency) == 1.0 and np.argwhere(relevance.peaks(saliency)).tolist() == [[0, 31]]
    saliency[16, 16] = 2
    assert relevance.on_border(saliency) == 0.0
    saliency[0, 0] = 2  # a tie: one of the two maxima on the border
    assert relevance.on_border(saliency) == 0.5
    assert relevance.border_mask((32, 32)).sum() == 32 * 32 - 28 * 28


def test_deletion_of_a_perfect_order_beats_a_random_one():
    """A toy model whose 'probability' is the share of the object still there: deleting the object first
    drops it at once, a random order only along the diagonal."""
    mask = square_mask()
    masks_perfect = relevance.steps_masks(relevance.deletion_order(mask.astype(float)), mask.shape, 20)
    masks_random = relevance.steps_masks(relevance.deletion_order(np.zeros(mask.shape), seed=3), mask.shape, 20)
    assert masks_perfect.shape == (21, *mask.shape) and not masks_perfect[0].any() and masks_perfect[-1].all()
    remaining = lambda removed: [(mask & ~m).sum() / mask.sum() for m in removed]  # noqa: E731
    perfect, random = relevance.curve_area(remaining(masks_perfect)), relevance.curve_area(remaining(masks_random))
    assert perfect < 0.1 and random == pytest.approx(0.5, abs=0.05)
    assert relevance.curve_area([1.0, 0.0]) == 0.5 and relevance.curve_area(np.ones(21)) == 1.0
