"""Principal Feature Visualisation on arrays (Bakken et al., ECCV 2020, eqs. 1-6).

Inputs are what one forward pass of a tapped network gives: the final feature map ``F_N`` and the
channel-sum maps ``A_l`` of the earlier tapped layers. Output is one RGB picture per image whose colours are
the principal contrasting features of the batch:

1. the map that weights the components: the paper's total activation map ``A^b`` (eqs. 1-2), or another
   weighting (:mod:`.activation`);
2. the principal components of ``F_N``'s pixels (eqs. 3-4, :mod:`.decomposition`), or those of a fitted
   basis (:mod:`.fitted`);
3. the components upsampled and weighted (eq. 5, :mod:`.weighting`);
4. the joint normalisation of the batch (eq. 6, :mod:`.normalise`).

``threads`` is how many threads the caller gives: the images are shared between them, and ``A^b`` is
summed while the decomposition runs. The unweighted components at full resolution are computed when
first read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .activation import BlankResponse, weighting_map, weighting_sources
from .decomposition import PrincipalComponents, fit_transform_pca
from .fitted import FittedBasis
from .normalise import Scaling, ValueStats, apply_scaling
from .parallel import IMAGES_PER_THREAD, in_parallel, run_all
from .upsample import resize_bilinear
from .weighting import RGB, weigh


@dataclass
class Visualisation:
    """What :func:`visualise` computes for a batch of ``B`` images of ``H0 x W0`` pixels.

    Attributes:
        rgb: ``(B, H0, W0, 3)`` float32 in ``[0, 1]``; component 1, 2, 3 in red, green, blue (a missing
            component, when fewer than three are kept, is a black channel).
        activation: ``(B, H0, W0)`` float32, the map that weighted the components (``A^b``, eq. 2, for the
            paper's weighting).
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

    @cached_property
    def shown_components(self) -> np.ndarray:
        """``(B, H0, W0, min(k, 3))`` float32: the components ``rgb`` shows, upsampled, not weighted."""
        return resize_bilinear(self.scores[..., :RGB], self.rgb.shape[1:3])

    @property
    def neutral(self) -> float:
        """The value a weighted component of 0 gets in ``rgb``: where the weighting is 0, the picture is this
        grey."""
        return self.scaling.neutral

    @cached_property
    def saliency(self) -> np.ndarray:
        """``(B, H0, W0)`` float32: how far each pixel's colour lies from the neutral grey (Euclidean, over
        the colours in use), which is where the picture says something."""
        return np.sqrt(np.square(self.component_saliency).sum(axis=-1, dtype=np.float32))

    @cached_property
    def component_saliency(self) -> np.ndarray:
        """``(B, H0, W0, min(k, 3))`` float32: each shown component's distance from the neutral grey."""
        return np.abs(self.rgb[..., : min(self.pca.n_components, RGB)] - np.float32(self.neutral))


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
    final: np.ndarray, maps: Sequence[np.ndarray], size: tuple[int, int], *, n_components: int = 3, hierarchical: bool = False,
    n_sigma: float = 1.0, solver: str = "auto", random_state: int = 0, activation: np.ndarray | None = None, threads: int = 1,
    weighting: str = "paper", blank: BlankResponse | None = None, decomposed: tuple[PrincipalComponents, np.ndarray] | None = None,
) -> Visualisation:
    """Run PFV on one analysis batch, its colours relative to this batch (the paper's method).

    Args:
        final: ``(B, C, h, w)`` final feature map ``F_N``.
        maps: channel-sum maps ``A_l`` of the earlier tapped layers, ``(B, h_l, w_l)`` each, in graph order.
            With no earlier layer, ``F_N``'s own channel sum stands in for them (for ``A^b``, and as the one
            layer of the hierarchical weighting).
        size: ``(H0, W0)``, the input image size.
        n_components: principal components kept (``rgb`` shows the first three).
        hierarchical: weight layer by layer (the reference code's variant, :mod:`.weighting`).
        n_sigma: clip of the joint whitening.
        solver, random_state: see :func:`pfv_onnx.core.fit_pca`.
        activation: ``(B, H0, W0)`` ``A^b`` when the graph computed it already (paper's weighting).
        threads: threads the caller gives (see the module docstring).
        weighting, blank: the map that weights the components, and the channel sums of a featureless
            image that the ``focus`` weighting needs (:mod:`.activation`); the hierarchical weighting is the
            paper's.
        decomposed: the batch's components and its ``(B, h, w, k)`` float32 scores, found elsewhere (from
            statistics computed on an accelerator, :func:`.pca_from_covariance`); ``final`` is then ``F_N``'s
            ``(B, h, w)`` channel sum, all that is needed of it.

    Returns:
        The :class:`Visualisation` of the batch.
    """
    size, maps = _checked(final, maps, size, activation, decomposed is not None)
    batch = final.shape[0]
    if hierarchical and weighting != "paper":
        raise ValueError("the hierarchical weighting is the paper's, layer by layer")
    sources = weighting_sources(final, maps, weighting, blank)
    peaks = [float(np.abs(m).max()) or 1.0 for m in sources]
    started = time.perf_counter()
    alongside = []
    if activation is None:
        activation = np.empty((batch, *size), dtype=np.float32)
        alongside.append(lambda: weighting_map(weighting, sources, size, peaks, out=activation))
    # A^b does not depend on the decomposition, which keeps one core busy: summed meanwhile (from a few
    # images on: below that a thread costs more than it saves).
    beside = threads if batch >= 2 * IMAGES_PER_THREAD else 1
    if decomposed is None:
        pca, scores = _decompose(final, alongside, beside, n_components=n_components, solver=solver, random_state=random_state)
    else:
        run_all(alongside, beside)
        pca, scores = decomposed
    done = time.perf_counter()

    # A positive scale changes nothing after the joint normalisation and keeps float32 products finite.
    peak = float(np.abs(scores[..., :RGB]).max())
    shown = scores[..., :RGB] * np.float32(1.0 / peak if peak > 0 else 1.0)
    rgb, stats = weigh(shown, size, activation, sources, peaks if hierarchical else None, threads)
    scale = stats.scaling(n_sigma)
    _rescale(rgb, min(n_components, RGB), scale, threads)
    timings = {"decomposition": done - started, "weighting": time.perf_counter() - done}
    return Visualisation(rgb, activation, scores, pca, scale, timings)


def _decompose(
    final: np.ndarray, alongside: list[Callable[[], None]], threads: int, *, n_components: int, solver: str, random_state: int
) -> tuple[PrincipalComponents, np.ndarray]:
    """The PCA of ``F_N`` ``(B, C, h, w)`` and its ``(B, h, w, k)`` float32 scores, with the tasks ``alongside``
    run in other threads meanwhile (``threads`` in all)."""
    batch, (height, width) = final.shape[0], final.shape[-2:]
    found: list = []

    def decompose() -> None:
        found.extend(fit_transform_pca(feature_matrix(final), n_components, solver, random_state, copy=False))

    run_all([decompose, *alongside], threads)
    pca, projected = found
    return pca, projected.astype(np.float32).reshape(batch, height, width, n_components)


def transform(
    final: np.ndarray,
    maps: Sequence[np.ndarray],
    size: tuple[int, int],
    basis: FittedBasis,
    activation: np.ndarray | None = None,
    threads: int = 1,
    blank: BlankResponse | None = None,
) -> Visualisation:
    """PFV with a fitted basis: the components, the layer weights and the normalisation come from
    ``basis`` (:mod:`pfv_onnx.core.fitted`), so each image gets the same colours whatever batch it is in.

    Arguments and result as :func:`visualise`.
    """
    if basis.scaling is None:
        raise ValueError("the basis has no normalisation yet (fit it on data first)")
    started = time.perf_counter()
    scores = basis.project(final)
    projected = time.perf_counter()
    rgb, activation = _weigh_with(basis, final, maps, size, scores, activation, threads, blank)[:2]
    _rescale(rgb, min(basis.pca.n_components, RGB), basis.scaling, threads)
    timings = {"decomposition": projected - started, "weighting": time.perf_counter() - projected}
    return Visualisation(rgb, activation, scores, basis.pca, basis.scaling, timings, basis)


def weighted_stats(
    final: np.ndarray, maps: Sequence[np.ndarray], size: tuple[int, int], basis: FittedBasis, threads: int = 1, blank: BlankResponse | None = None
) -> tuple[ValueStats, ValueStats]:
    """The second pass of a fit on one batch: the :class:`ValueStats` of its weighted components under
    ``basis``, and of its activation map."""
    _, activation, stats = _weigh_with(basis, final, maps, size, basis.project(final), None, threads, blank)
    return stats, ValueStats.of(activation)


def _weigh_with(
    basis: FittedBasis, final, maps, size, scores: np.ndarray, activation: np.ndarray | None, threads: int, blank: BlankResponse | None
) -> tuple[np.ndarray, np.ndarray, ValueStats]:
    """Eq. 5 with the basis's weighting, prescale and layer divisors: the weighted components, the weighting
    map and their statistics."""
    size, maps = _checked(final, maps, size, activation)
    weighting = basis.weighting
    sources = weighting_sources(final, maps, weighting, blank)
    # The layers weight the components unless A^b is given and the weighting is not hierarchical.
    if (activation is None or basis.hierarchical) and len(sources) != len(basis.layer_peaks):
        raise ValueError(f"the basis weights {len(basis.layer_peaks)} layers, the features have {len(sources)}")
    if activation is None:
        activation = weighting_map(weighting, sources, size, basis.layer_peaks, threads=threads)
    shown = scores[..., :RGB] * np.float32(basis.prescale)
    rgb, stats = weigh(shown, size, activation, sources, basis.layer_peaks if basis.hierarchical else None, threads)
    return rgb, activation, stats


def _checked(final: np.ndarray, maps: Sequence[np.ndarray], size, activation, summed: bool = False) -> tuple[tuple[int, int], list[np.ndarray]]:
    """The shape checks: ``(H0, W0)`` as ints and the maps as float32 (``summed``: ``final`` is ``F_N``'s
    ``(B, h, w)`` channel sum)."""
    if final.ndim != (3 if summed else 4):
        raise ValueError(f"expected a {'(B, h, w) channel sum' if summed else '(B, C, h, w) final feature map'}, got shape {final.shape}")
    batch = final.shape[0]
    size = (int(size[0]), int(size[1]))
    maps = [np.asarray(m, dtype=np.float32) for m in maps]
    for m in maps:
        if m.ndim != 3 or m.shape[0] != batch:
            raise ValueError(f"each activation map must be (B={batch}, h, w), got shape {m.shape}")
    if activation is not None and activation.shape != (batch, *size):
        raise ValueError(f"activation must be {(batch, *size)}, got {activation.shape}")
    return size, maps


def _rescale(rgb: np.ndarray, channels: int, scale: Scaling, threads: int) -> None:
    """Eq. 6's normalisation applied in place, image by image (each image's values stay in cache)."""

    def images(part: range) -> None:
        for b in part:
            apply_scaling(rgb[b, ..., :channels], scale, out=rgb[b, ..., :channels])

    in_parallel(images, rgb.shape[0], threads)
