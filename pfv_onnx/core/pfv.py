"""Principal Feature Visualisation on arrays (Bakken et al., ECCV 2020, eqs. 1-6).

Inputs are what one forward pass of a tapped network gives: the final feature map ``F_N`` and the
channel-sum maps ``A_l`` of the earlier tapped layers. Output is one RGB picture per image whose colours are
the principal contrasting features of the batch.

The full-resolution work (upsampling, weighting, the statistics of the joint normalisation) runs image by
image while each image's arrays are in cache, so the ``(B, H0, W0, 3)`` output is written once and
rescaled in place once; the unweighted components at full resolution are computed when first read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property

import cv2
import numpy as np

from .activation import add_upsampled, channel_sum
from .decomposition import PrincipalComponents, fit_transform_pca
from .normalise import Scaling, apply_scaling, scaling_from_moments
from .upsample import resize_bilinear

RGB = 3


class Visualisation:
    """What :func:`visualise` computes for a batch of ``B`` images of ``H0 x W0`` pixels.

    Attributes:
        rgb: ``(B, H0, W0, 3)`` float32 in ``[0, 1]``; component 1, 2, 3 in red, green, blue (a missing
            component, when fewer than three are kept, is a black channel).
        activation: ``(B, H0, W0)`` float32, the total activation map ``A^b`` (eq. 2).
        scores: ``(B, h, w, k)`` float32 principal components at the final layer's resolution.
        pca: the fitted basis (components, explained variance, solver).
        scaling: the joint normalisation that maps the weighted components to ``rgb``.
        timings: seconds spent in ``decomposition`` (PCA) and ``weighting`` (upsampling, weighting,
            normalisation).
    """

    def __init__(
        self,
        rgb: np.ndarray,
        activation: np.ndarray,
        scores: np.ndarray,
        pca: PrincipalComponents,
        scaling: Scaling,
        timings: dict[str, float],
    ):
        self.rgb = rgb
        self.activation = activation
        self.scores = scores
        self.pca = pca
        self.scaling = scaling
        self.timings = timings

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
    """Run PFV on one analysis batch.

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
    if final.ndim != 4:
        raise ValueError(f"expected a (B, C, h, w) final feature map, got shape {final.shape}")
    batch, _, height, width = final.shape
    size = (int(size[0]), int(size[1]))
    maps = [np.asarray(m, dtype=np.float32) for m in maps]
    for m in maps:
        if m.ndim != 3 or m.shape[0] != batch:
            raise ValueError(f"each activation map must be (B={batch}, h, w), got shape {m.shape}")
    if activation is not None and activation.shape != (batch, *size):
        raise ValueError(f"activation must be {(batch, *size)}, got {activation.shape}")
    if not n_sigma > 0:
        raise ValueError(f"n_sigma must be positive, got {n_sigma}")

    started = time.perf_counter()
    pca, projected = fit_transform_pca(feature_matrix(final), n_components, solver, random_state, copy=False)
    scores = projected.astype(np.float32).reshape(batch, height, width, n_components)
    decomposed = time.perf_counter()

    shown = scores[..., :RGB]
    # A positive scale changes nothing after the joint normalisation and keeps float32 products finite.
    peak = float(np.abs(shown).max())
    shown = shown * np.float32(1.0 / peak) if peak > 0 else shown.copy()
    channels = shown.shape[-1]
    # With no earlier layer, F_N's own channel sum stands in for the maps, in both variants.
    sources = maps if maps else [channel_sum(final)]
    fill_activation = activation is None
    if fill_activation:
        activation = np.empty((batch, *size), dtype=np.float32)
    else:
        activation = np.asarray(activation, dtype=np.float32)
    layer_peaks = [float(np.abs(m).max()) or 1.0 for m in sources] if hierarchical else []

    rgb = np.zeros((batch, *size, RGB), dtype=np.float32)
    moments = np.zeros(3)  # count, sum, sum of squares of the weighted components (float64)
    lo, hi = np.inf, -np.inf
    scratch = np.empty(size, dtype=np.float32)
    pixels = size[0] * size[1]
    for b in range(batch):
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
            target *= activation[b][..., None]
        if channels != RGB:
            rgb[b, ..., :channels] = target
        # Statistics of the joint normalisation while the image is in cache (OpenCV sums in float64).
        means, stds = cv2.meanStdDev(target)
        moments += (pixels * channels, pixels * means.sum(), pixels * float((stds**2 + means**2).sum()))
        lo, hi = min(lo, float(target.min())), max(hi, float(target.max()))

    scale = scaling_from_moments(*moments, lo, hi, n_sigma)
    for b in range(batch):
        apply_scaling(rgb[b, ..., :channels], scale, out=rgb[b, ..., :channels])
    timings = {"decomposition": decomposed - started, "weighting": time.perf_counter() - decomposed}
    return Visualisation(rgb, activation, scores, pca, scale, timings)
