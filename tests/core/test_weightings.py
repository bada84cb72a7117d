"""The maps that weight the components: the focus weighting against a direct computation, the taps each
weighting reads, and a basis that keeps the weighting it was fitted with."""

from __future__ import annotations

import numpy as np
import pytest

from pfv_onnx import PFV, PFVError
from pfv_onnx.images import bundled
from pfv_onnx.core import BlankResponse, weighting_map, weighting_sources
from pfv_onnx.core.activation import FOCUS_FLOOR, channel_sum
from pfv_onnx.core.upsample import resize_bilinear


def test_focus_is_the_geometric_mean_of_the_responses_beyond_the_blank_image():
    rng = np.random.default_rng(0)
    final, fine = rng.random((2, 5, 4, 4), np.float32), rng.random((2, 8, 8), np.float32) * 3
    blank = BlankResponse(channel_sum(final[:1])[0], (fine[0],))  # the first image is the blank one
    sources = weighting_sources(final, [fine], "focus", blank)
    deep = np.maximum(channel_sum(final) - blank.final, 0)
    np.testing.assert_allclose(sources[0], deep)
    np.testing.assert_allclose(sources[1], np.maximum(fine - fine[0], 0))
    peaks = [float(s.max()) for s in sources]
    w = weighting_map("focus", sources, (16, 16), peaks)
    expected = np.sqrt(resize_bilinear(deep, (16, 16)) / peaks[0] * (resize_bilinear(sources[1], (16, 16)) / peaks[1] + FOCUS_FLOOR))
    expected[0] = 1.0  # the blank image has no place to prefer: unweighted, whatever batch it is in
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(weighting_map("focus", [s[:1] for s in sources], (16, 16), peaks), w[:1])


def test_a_network_that_responds_to_nothing_beyond_the_blank_image_is_left_unweighted():
    final = np.ones((3, 4, 2, 2), np.float32)
    blank = BlankResponse(channel_sum(final[:1])[0], ())
    sources = weighting_sources(final, [], "focus", blank)
    assert len(sources) == 1 and not sources[0].any()
    np.testing.assert_array_equal(weighting_map("focus", sources, (8, 8), [1.0]), np.ones((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match="featureless image"):
        weighting_sources(final, [], "focus", None)


def test_each_weighting_reads_the_taps_it_needs():
    taps = PFV(weighting="paper").taps
    assert len(taps) == 4
    assert PFV().taps == taps[-1:] and PFV(weighting="final").taps == []
    assert PFV(hierarchical=True).taps == taps
    # The blank image's channel sums, at each tap's resolution, are what the focus weighting subtracts.
    blank = PFV().featurizer.blank
    assert blank.final.shape == (7, 7) and [m.shape for m in blank.maps] == [(14, 14)]


def test_a_basis_keeps_its_weighting(tmp_path):
    photos = bundled.sample_images()[:4]
    focus = PFV().fit(photos)
    assert focus.basis.weighting == "focus" and len(focus.basis.layer_peaks) == 2
    path = focus.save_basis(tmp_path / "focus.npz")
    with pytest.raises(PFVError, match="weighting is 'paper' here but 'focus' in the basis"):
        PFV(weighting="paper", basis=path)
    reopened = PFV(basis=path)  # the basis decides, and the taps follow it
    assert reopened.options.weighting == "focus" and reopened.taps == focus.taps
    np.testing.assert_array_equal(reopened.transform(photos).rgb, focus.transform(photos).rgb)
    with pytest.raises(PFVError, match="weights by focus"):
        PFV(weighting="paper")._use_basis(path)


def test_a_token_grid_is_weighted_by_its_tokens_length_not_their_channel_sum():
    """A norm centres each token over its channels: with a uniform scale (as frameworks initialise it) every
    token's channel sum is the same, and a channel sum weights by float noise; their length (for focus: their
    distance from the featureless image's token) does not."""
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((3, 64, 6, 10)).astype(np.float32) * rng.random((3, 1, 6, 10), np.float32) * 4
    tokens = (raw - raw.mean(axis=1, keepdims=True)) / raw.std(axis=1, keepdims=True)  # a LayerNorm without its affine part
    assert np.ptp(channel_sum(tokens)) < 1e-4 * np.ptp(np.linalg.norm(tokens - tokens[:1], axis=1))
    blank = BlankResponse(channel_sum(tokens[:1])[0], (), tokens=tokens[0])  # the first image is the blank one
    distance = np.sqrt(((tokens - tokens[0]) ** 2).sum(axis=1))
    (focus,) = weighting_sources(tokens, [], "focus", blank)
    np.testing.assert_allclose(focus, distance, rtol=1e-5, atol=1e-5)
    assert not focus[0].any() and focus[1:].min() > 0
    for weighting in ("paper", "final"):
        (length,) = weighting_sources(tokens, [], weighting, blank)
        np.testing.assert_allclose(length, np.linalg.norm(tokens, axis=1), rtol=1e-5)
    w = weighting_map("focus", [focus], (12, 20), [float(focus.max())])
    np.testing.assert_array_equal(w[0], 1.0)  # the blank image itself: no place to prefer
