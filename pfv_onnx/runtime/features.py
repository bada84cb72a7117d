"""What flows between the model side and the colouring: arrays only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Batch:
    """Images ready for one forward pass.

    Attributes:
        inputs: ``(B, ...)`` the model's input, in its layout and dtype.
        crops: ``(B, H0, W0, 3)`` uint8 RGB pictures the inputs were made from, ``None`` for a batch given
            preprocessed.
        names: one name per image.
    """

    inputs: np.ndarray
    crops: np.ndarray | None
    names: list[str]


@dataclass(frozen=True)
class FinalStatistics:
    """What the graph computed of ``F_N`` for the decomposition, so that ``F_N`` itself can stay on an
    accelerator (a model tapped with statistics, :data:`pfv_onnx.graph.rewrite.STATISTICS`).

    Attributes:
        final_sum: ``(B, h, w)`` float32, ``F_N``'s channel sum.
        mean: ``(C,)`` float64, the mean of ``F_N``'s pixels over the batch.
        scatter: ``(C, C)`` float64, the sum of the centred pixels' outer products.
        shape: ``(B, C, h, w)`` of ``F_N``.
        project: ``(mean (C,), components (k, C))`` to the ``(B, h, w, k)`` float32 scores of ``F_N``,
            computed where ``F_N`` is.
    """

    final_sum: np.ndarray
    mean: np.ndarray
    scatter: np.ndarray
    shape: tuple[int, int, int, int]
    project: Callable[[np.ndarray, np.ndarray], np.ndarray]


class Features:
    """What one forward pass of the tapped model gives for a batch of ``B`` images.

    Attributes:
        final: ``(B, C, h, w)`` float32, ``F_N``; when it stayed on an accelerator, fetched when first read.
        maps: one ``(B, h_l, w_l)`` float32 channel-sum map per earlier tap, in graph order; ``None`` when
            the graph computed ``A^b`` and they were not fetched (they stayed in onnxruntime).
        activation: ``(B, H0, W0)`` float32 ``A^b`` when the graph computed it, else ``None``.
        logits: ``(B, K)`` float32 model output when kept, else ``None``.
        statistics: ``F_N``'s statistics from the graph (:class:`FinalStatistics`), when it computed them;
            ``F_N`` then stays on the device while these features (or a result holding them) are alive.
    """

    def __init__(
        self,
        final: np.ndarray | Callable[[], np.ndarray],
        maps: list[np.ndarray] | None,
        activation: np.ndarray | None = None,
        logits: np.ndarray | None = None,
        statistics: FinalStatistics | None = None,
    ):
        self._final = final
        self.maps = maps
        self.activation = activation
        self.logits = logits
        self.statistics = statistics

    @property
    def final(self) -> np.ndarray:
        if callable(self._final):
            self._final = self._final()
        return self._final

    @property
    def final_fetched(self) -> bool:
        """Whether ``F_N`` is on the host (given so, or read since)."""
        return not callable(self._final)
