"""From features to colours: PFV of one analysis batch, relative to the batch (the paper's method) or with a
fitted basis, and the result of a batch that pictures and reports are drawn from."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..util import memory
from ..core import BlankResponse, FittedBasis, PrincipalComponents, Visualisation, transform, visualise
from ..core.activation import final_response
from ..core.decomposition import pca_from_covariance
from ..util.console import plural
from ..errors import PFVError
from ..runtime.features import Features, FinalStatistics
from ..options import Options
from ..util.threads import single_threaded, worker_count


def colour(
    features: Features,
    size: tuple[int, int],
    options: Options,
    basis: FittedBasis | None = None,
    threads: int | None = None,
    blank: BlankResponse | None = None,
    decomposed: tuple[PrincipalComponents, np.ndarray] | None = None,
) -> Visualisation:
    """The NumPy part of PFV on the features of one analysis batch: relative to the batch with the
    ``method`` options, or with ``basis`` (which fixes the method).

    Args:
        size: ``(H0, W0)``, the model's input size.
        threads: threads for the core (default: the cores this process may use).
        blank: the channel sums of a featureless image, for the ``focus`` weighting.
        decomposed: the batch's components and ``(B, h, w, k)`` scores, found already (the same batch
            coloured with another weighting); otherwise from ``F_N``, or from its statistics in the graph.

    Raises:
        PFVError: the batch cannot be coloured (too few pixels for the components, the per-layer maps
            missing for the hierarchical weighting, NaN features).
    """
    threads = threads or worker_count()
    statistics = features.statistics if basis is None else None
    if basis is None:
        shape = statistics.shape if statistics is not None else features.final.shape
        check_components(options.n_components, shape[0], shape[1:])
    hierarchical = basis.hierarchical if basis is not None else options.hierarchical
    if features.maps is None and hierarchical:
        raise PFVError("the hierarchical weighting needs the per-layer maps: forward(inputs, maps=True)")
    maps = features.maps if features.maps is not None else []
    # A^b computed in the graph is the paper's: another weighting makes its own map from the maps.
    activation = features.activation if (basis.weighting if basis is not None else options.weighting) == "paper" else None
    try:
        with single_threaded():
            if basis is not None:
                return transform(features.final, maps, size, basis, activation=activation, threads=threads, blank=blank)
            started = time.perf_counter()
            if decomposed is None and statistics is not None:
                decomposed = _decomposed(statistics, options)
            spent = time.perf_counter() - started
            # Once decomposed, only F_N's response is needed of it.
            final = features.final if decomposed is None else statistics.final_sum if statistics is not None else final_response(features.final, options.weighting, blank)
            vis = visualise(
                final, maps, size, n_components=options.n_components,
                hierarchical=options.hierarchical, n_sigma=options.n_sigma, solver=options.solver, activation=activation,
                threads=threads, weighting=options.weighting, blank=blank, decomposed=decomposed,
            )
            vis.timings["decomposition"] += spent
            return vis
    except ValueError as exc:
        raise PFVError(f"cannot visualise this batch: {exc}") from None


def _decomposed(statistics: FinalStatistics, options: Options) -> tuple[PrincipalComponents, np.ndarray]:
    """The batch's components from the statistics the graph computed, and ``F_N``'s scores, projected where
    ``F_N`` is: only ``C x C`` and ``(B, h, w, k)`` arrays leave the device."""
    batch, _, height, width = statistics.shape
    pixels = batch * height * width
    pca = pca_from_covariance(statistics.mean, statistics.scatter / max(pixels - 1, 1), pixels, options.n_components, random_state=0)
    return pca, statistics.project(pca.mean, pca.components)


def check_components(n_components: int, images: int, final_shape: tuple[int, int, int]) -> None:
    """Refuse, with one line, more components than ``images`` images give when ``F_N`` is ``(C, h, w)``: at
    most ``C``, and at most one per pixel of the batch."""
    channels, height, width = final_shape
    pixels = images * height * width
    if n_components > channels:
        raise PFVError(f"the final layer has {channels} channels, fewer than the {n_components} components asked for: ask for fewer")
    if pixels < n_components:
        raise PFVError(
            f"the final layer gives {pixels} pixel(s) for this batch ({height} x {width} per image), "
            f"fewer than the {n_components} components asked for: use more images or fewer components"
        )


@dataclass
class BatchResult:
    """PFV of one analysis batch of ``B`` images at the model's input size ``H0 x W0``.

    Attributes:
        visualisation: the core's arrays (:class:`pfv_onnx.core.Visualisation`); the properties below read it.
        taps: the earlier taps the weighting read, in graph order.
        final: tensor name of ``F_N``.
        logits: ``(B, K)`` float32 model output, ``None`` when the head was not kept.
        images: ``(B, H0, W0, 3)`` uint8 RGB model-input crops, ``None`` for a preprocessed float batch.
        names: one name per image (file stem, or ``image_<i>``).
        labels: class names for ``logits``, when known.
        features: the forward pass's outputs (``F_N``, the per-layer maps), for baselines and probes.
        timings: seconds per stage: ``preprocess``, ``forward``, ``decomposition``, ``weighting``.
        description: the model and options that made it (:meth:`pfv_onnx.PFV.describe`).
    """

    visualisation: Visualisation
    taps: list[str]
    final: str
    logits: np.ndarray | None = None
    images: np.ndarray | None = None
    names: list[str] = field(default_factory=list)
    labels: list[str] | None = None
    features: Features | None = None
    timings: dict[str, float] = field(default_factory=dict)
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def rgb(self) -> np.ndarray:
        """``(B, H0, W0, 3)`` float32 in ``[0, 1]``: component 1, 2, 3 in red, green, blue."""
        return self.visualisation.rgb

    @property
    def activation(self) -> np.ndarray:
        """``(B, H0, W0)`` float32, the map that weighted the components (the paper's ``A^b``, or another
        weighting's)."""
        return self.visualisation.activation

    @property
    def components(self) -> np.ndarray:
        """``(B, H0, W0, k)`` float32, the principal components upsampled, not weighted (computed on first use;
        refused with one line when they would not fit in memory)."""
        if "components" not in self.visualisation.__dict__:
            batch, height, width, k = *self.rgb.shape[:3], self.visualisation.scores.shape[-1]
            memory.require(batch * height * width * k * 4, f"the {plural(k, 'component')} of {plural(batch, 'image')} at {height} x {width}",
                           "ask for fewer components, or read the first three from visualisation.shown_components")
        return self.visualisation.components

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        """``(k,)`` float64 share of ``F_N``'s variance explained by each component."""
        return self.visualisation.pca.explained_variance_ratio

    def top_k(self, k: int = 5) -> list[list[tuple[int, str | None, float]]]:
        """Per image, the ``k`` most probable classes as ``(index, name, probability)``."""
        if self.logits is None:
            raise PFVError("the model's output was not kept, so there are no predictions")
        probs = probabilities(self.logits)
        best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [
            [(int(c), self.labels[c] if self.labels and c < len(self.labels) else None, float(p[c])) for c in row]
            for row, p in zip(best, probs)
        ]


def probabilities(logits: np.ndarray) -> np.ndarray:
    """``(B, K)`` float64: the softmax of each row of ``(B, K)`` scores, unless the rows are probabilities
    already (a softmax inside the model)."""
    x = logits.astype(np.float64)
    if np.all(x >= 0) and np.allclose(x.sum(axis=1), 1.0, atol=1e-3):
        return x
    x = np.exp(x - x.max(axis=1, keepdims=True))
    return x / x.sum(axis=1, keepdims=True)


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """``(B, K)`` class scores as probabilities: a softmax, unless they are probabilities already. One
    score per image is a binary classifier's: ``(B, 2)``, the sigmoid of a logit and its complement."""
    scores = np.asarray(outputs, np.float64)
    if scores.shape[1] == 1:
        positive = scores[:, 0] if 0 <= scores.min() and scores.max() <= 1 else 1 / (1 + np.exp(-scores[:, 0]))
        return np.stack([1 - positive, positive], axis=1)
    return probabilities(scores)
