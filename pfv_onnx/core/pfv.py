"""Principal Feature Visualisation on arrays (Bakken et al., ECCV 2020, eqs. 1-6).

Inputs are what one forward pass of a tapped network gives: the final feature map ``F_N`` and the
channel-sum maps ``A_l`` of the earlier tapped layers. Output is one RGB picture per image whose colours are
the principal contrasting features of the batch.

The full-resolution work (upsampling, weighting, the statistics of the joint normalisation) runs image by
image while each image's arrays are in cache, so the ``(B, H0, W0, 3)`` output is written once and
rescaled in place once, the images shared between two threads; ``A^b`` is summed in a thread of its own
while the decomposition runs. The unweighted components at full resolution are computed when first read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from .activation import add_upsampled, channel_sum, total_activation
from .decomposition import PrincipalComponents, fit_transform_pca
from .fitted import FittedBasis
from .normalise import Scaling, ValueStats, apply_scaling
from .upsample import resize_bilinear

RGB = 3
# Threads that share a batch's images (OpenCV and NumPy release the GIL for the large work on each), from
# batches of PARALLEL_FROM images on (below that, starting a thread costs more than it saves).
THREADS = 2
PARALLEL_FROM = 4


def in_parallel(work, count: int, threads: int | None = None) -> None:
    """Run ``work(part)`` on consecutive parts of ``range(count)``, one per thread (this one included; default
    :data:`THREADS` threads), and wait for all; the first exception is raised here."""
    threads = (threads or THREADS) if count >= PARALLEL_FROM else 1
    bounds = [round(i * count / threads) for i in range(threads + 1)]
    parts = [range(bounds[i], bounds[i + 1]) for i in range(threads) if bounds[i + 1] > bounds[i]]
    if len(parts) < 2:
        for part in parts:
            work(part)
        return
    errors: list[BaseException] = []

    def guarded(part: range) -> None:
        try:
            work(part)
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    helpers = [threading.Thread(target=guarded, args=(part,)) for part in parts[1:]]
    for helper in helpers:
        helper.start()
    guarded(parts[0])
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]


@dataclass
class Visualisation:
    """What :func:`visualise` computes for a batch of ``B`` images of ``H0 x W0`` pixels.

    Attributes:
        rgb: ``(B, H0, W0, 3)`` float32 in ``[0, 1]``; component 1, 2, 3 in red, green, blue (a missing
            component, when fewer than three are kept, is a black channel).
        activation: ``(B, H0, W0)`` float32, the total activation map ``A^b`` (eq. 2).
        scores: ``(B, h, w, k)`` float32 principal components at the final layer's resolution.
        pca: the principal components of this batch, or of the fitted basis (explained variance, solver).
        scaling: the joint normalisation that maps the weighted components to ``rgb``.
        timings: seconds spent in ``decomposition`` (PCA) and ``weighting`` (upsampling, weighting,
            normalisation).
        basis: the fitted basis that coloured it, or ``None`` when the colours are relative to the batch.
    """

    rgb: np.ndarray
    activation: np.ndarray
    scores: np.ndarray
    pca: PrincipalComponents
    scaling: Scaling
    timings: dict[str, float]
    basis: FittedBasis | None = None

    @cached_property
    def components(self) -> np.ndarray:
        """``(B, H0, W0, k)`` float32: the principal components upsampled to the input size, not weighted."""
        return resize_bilinear(self.scores, self.rgb.shape[1:3])


def feature_matrix(final: np.ndarray) -> np.ndarray:
    """Eq. 3's reshape: ``(B, C, h, w)`` to a ``(B*h*w, C)`` matrix (same dtype), one row per pixel of each image.

    Rows run over images, then pixel rows, then pixel columns. The matrix is Fortran-ordered (each channel's
    values contiguous): copying whole ``h*w`` planes is several times faster than a channels-last transpose,
    and BLAS reads either order.
    """
    if final.ndim != 4:
        raise ValueError(f"expected a (B, C, h, w) final feature map, got shape {final.shape}")
    batch, channels, height, width = final.shape
    planes = np.empty((channels, batch, height * width), dtype=final.dtype)
    planes[...] = final.reshape(batch, channels, height * width).transpose(1, 0, 2)
    return planes.reshape(channels, -1).T


def _check_inputs(final: np.ndarray, maps: Sequence[np.ndarray], size, activation, n_sigma: float) -> list[np.ndarray]:
    if final.ndim != 4:
        raise ValueError(f"expected a (B, C, h, w) final feature map, got shape {final.shape}")
    batch = final.shape[0]
    maps = [np.asarray(m, dtype=np.float32) for m in maps]
    for m in maps:
        if m.ndim != 3 or m.shape[0] != batch:
            raise ValueError(f"each activation map must be (B={batch}, h, w), got shape {m.shape}")
    if activation is not None and activation.shape != (batch, *size):
        raise ValueError(f"activation must be {(batch, *size)}, got {activation.shape}")
    if not n_sigma > 0:
        raise ValueError(f"n_sigma must be positive, got {n_sigma}")
    return maps


def layer_sources(final: np.ndarray, maps: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The maps that weight the components: the earlier layers', or ``F_N``'s own channel sum without them."""
    return list(maps) if maps else [channel_sum(final)]


def visualise(
    final: np.ndarray,
    maps: Sequence[np.ndarray],
    size: tuple[int, int],
    *,
    n_components: int = 3,
    hierarchical: bool = False,
    n_sigma: float = 1.0,
    solver: str = "auto",
    random_state: int = 0,
    activation: np.ndarray | None = None,
) -> Visualisation:
    """Run PFV on one analysis batch, its colours relative to this batch (the paper's method).

    Args:
        final: ``(B, C, h, w)`` final feature map ``F_N``.
        maps: channel-sum maps ``A_l`` of the earlier tapped layers, ``(B, h_l, w_l)`` each, in graph order.
            With no earlier layer, ``F_N``'s own channel sum stands in for them (for ``A^b``, and as the one
            layer of the hierarchical weighting).
        size: ``(H0, W0)``, the input image size.
        n_components: principal components kept (``rgb`` shows the first three).
        hierarchical: weight layer by layer (the reference code's variant): upsample the components to each
            earlier layer in turn, from the last to the first, multiplying by that layer's channel sum divided
            by its largest magnitude in the batch; then upsample to ``size``.
        n_sigma: clip of the joint whitening.
        solver, random_state: see :func:`pfv_onnx.core.fit_pca`.
        activation: ``(B, H0, W0)`` ``A^b`` when the graph computed it already.

    Returns:
        The :class:`Visualisation` of the batch.
    """
    size = (int(size[0]), int(size[1]))
    maps = _check_inputs(final, maps, size, activation, n_sigma)
    batch, _, height, width = final.shape
    sources = layer_sources(final, maps)
    started = time.perf_counter()
    # A^b does not depend on the decomposition: it is summed in another thread meanwhile (the PCA keeps
    # one core busy with one BLAS thread).
    helper = None
    if activation is None and not hierarchical and batch >= PARALLEL_FROM:
        activation = np.empty((batch, *size), dtype=np.float32)
        helper = threading.Thread(target=total_activation, args=(sources, size, activation))
        helper.start()
    try:
        pca, projected = fit_transform_pca(feature_matrix(final), n_components, solver, random_state, copy=False)
    finally:
        if helper is not None:
            helper.join()
    scores = projected.astype(np.float32).reshape(batch, height, width, n_components)
    decomposed = time.perf_counter()

    # A positive scale changes nothing after the joint normalisation and keeps float32 products finite.
    peak = float(np.abs(scores[..., :RGB]).max())
    peaks = [float(np.abs(m).max()) or 1.0 for m in sources]
    rgb, activation, stats = weigh(scores, sources, size, 1.0 / peak if peak > 0 else 1.0, peaks, hierarchical, activation)
    scale = stats.scaling(n_sigma)
    _rescale(rgb, min(n_components, RGB), scale)
    timings = {"decomposition": decomposed - started, "weighting": time.perf_counter() - decomposed}
    return Visualisation(rgb, activation, scores, pca, scale, timings)


def weigh(
    scores: np.ndarray,
    sources: Sequence[np.ndarray],
    size: tuple[int, int],
    prescale: float,
    layer_peaks: Sequence[float],
    hierarchical: bool,
    activation: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, ValueStats]:
    """Eq. 5: the first three components upsampled and weighted, image by image, with the statistics of
    the joint normalisation gathered while each image is in cache.

    Args:
        scores: ``(B, h, w, k)`` float32 principal components at ``F_N``'s resolution.
        sources: :func:`layer_sources`, ``(B, h_l, w_l)`` each.
        size: ``(H0, W0)``.
        prescale: positive factor applied to the scores (keeps float32 products finite).
        layer_peaks: one positive divisor per source, for the hierarchical weighting.
        hierarchical: weight layer by layer instead of by ``A^b``.
        activation: ``(B, H0, W0)`` ``A^b`` if known; computed from ``sources`` otherwise.

    Returns:
        ``(B, H0, W0, 3)`` float32 weighted components (not normalised; a channel beyond ``k`` stays 0),
        ``A^b`` ``(B, H0, W0)`` float32, and the :class:`ValueStats` of the weighted components.
    """
    batch = scores.shape[0]
    shown = scores[..., :RGB] * np.float32(prescale)
    channels = shown.shape[-1]
    fill_activation = activation is None
    activation = np.empty((batch, *size), dtype=np.float32) if fill_activation else np.asarray(activation, dtype=np.float32)
    # Every value is written below when all three colours are used; a missing colour stays black (0).
    rgb = (np.empty if channels == RGB else np.zeros)((batch, *size, RGB), dtype=np.float32)
    pixels = size[0] * size[1]
    per_image: list[ValueStats] = [ValueStats()] * batch

    def images(part: range) -> None:
        scratch = np.empty(size, dtype=np.float32)
        spread = np.empty((*size, channels), dtype=np.float32)
        for b in part:
            if fill_activation:
                add_upsampled([s[b] for s in sources], size, activation[b], scratch)
            # Written straight into the output when all three colours are used.
            target = rgb[b] if channels == RGB else np.empty((*size, channels), dtype=np.float32)
            if hierarchical:
                weighted = shown[b]
                for m, m_peak in zip(reversed(sources), reversed(layer_peaks)):
                    weighted = resize_bilinear(weighted[None], m.shape[1:])[0]
                    weighted *= (m[b] * np.float32(1.0 / m_peak))[..., None]
                resize_bilinear(weighted[None], size, out=target[None])
            else:
                resize_bilinear(shown[b][None], size, out=target[None])
                _weight_by(target, activation[b], spread)
            if channels != RGB:
                rgb[b, ..., :channels] = target
            # OpenCV sums in float64; one pass for the mean and spread, two cheap ones for the extremes.
            means, stds = cv2.meanStdDev(target)
            n = pixels * channels
            total, squares = pixels * float(means.sum()), pixels * float((stds**2 + means**2).sum())
            per_image[b] = ValueStats(n, total, squares, float(target.min()), float(target.max()))

    in_parallel(images, batch)
    stats = ValueStats()
    for image_stats in per_image:  # merged in image order: the same sums however the images were shared
        stats = stats.merge(image_stats)
    return rgb, activation, stats


def _weight_by(target: np.ndarray, weight: np.ndarray, spread: np.ndarray) -> None:
    """``target *= weight[..., None]`` for ``(H, W, k)`` and ``(H, W)`` float32 arrays, ``spread`` a
    ``(H, W, k)`` scratch array: NumPy's broadcast over a last axis of 3 is 4x slower than OpenCV's
    channel-wise product of the weight copied to each channel (the same float32 products)."""
    if target.shape[-1] == RGB:
        cv2.multiply(target, cv2.cvtColor(weight, cv2.COLOR_GRAY2RGB, dst=spread), dst=target)
    else:
        target *= weight[..., None]


def _rescale(rgb: np.ndarray, channels: int, scale: Scaling) -> None:
    """Apply the normalisation in place, image by image (each image's values stay in cache)."""

    def images(part: range) -> None:
        for b in part:
            apply_scaling(rgb[b, ..., :channels], scale, out=rgb[b, ..., :channels])

    in_parallel(images, rgb.shape[0])


def transform(
    final: np.ndarray,
    maps: Sequence[np.ndarray],
    size: tuple[int, int],
    basis: FittedBasis,
    activation: np.ndarray | None = None,
) -> Visualisation:
    """PFV with a fitted basis: the components, the layer weights and the normalisation come from
    ``basis`` (:mod:`pfv_onnx.core.fitted`), so each image gets the same colours whatever batch it is in.

    Arguments and result as :func:`visualise`.
    """
    if basis.scaling is None:
        raise ValueError("the basis has no normalisation yet (fit it on data first)")
    size = (int(size[0]), int(size[1]))
    maps = _check_inputs(final, maps, size, activation, basis.n_sigma)
    batch, _, height, width = final.shape
    started = time.perf_counter()
    scores = basis.project(final)
    projected = time.perf_counter()
    sources = layer_sources(final, maps)
    # The layers weight the components unless A^b is given and the weighting is not hierarchical.
    if (activation is None or basis.hierarchical) and len(sources) != len(basis.layer_peaks):
        raise ValueError(f"the basis weights {len(basis.layer_peaks)} layers, the features have {len(sources)}")
    rgb, activation, _ = weigh(scores, sources, size, basis.prescale, basis.layer_peaks, basis.hierarchical, activation)
    _rescale(rgb, min(basis.pca.n_components, RGB), basis.scaling)
    timings = {"decomposition": projected - started, "weighting": time.perf_counter() - projected}
    return Visualisation(rgb, activation, scores, basis.pca, basis.scaling, timings, basis)


def weighted_stats(final: np.ndarray, maps: Sequence[np.ndarray], size: tuple[int, int], basis: FittedBasis) -> tuple[ValueStats, ValueStats]:
    """The second pass of a fit on one batch: the :class:`ValueStats` of its weighted components under
    ``basis``, and of its activation map."""
    size = (int(size[0]), int(size[1]))
    maps = _check_inputs(final, maps, size, None, basis.n_sigma)
    _, activation, stats = weigh(basis.project(final), layer_sources(final, maps), size, basis.prescale, basis.layer_peaks, basis.hierarchical)
    return stats, ValueStats.of(activation)
