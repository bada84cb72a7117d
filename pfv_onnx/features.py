"""What flows between the model side and the colouring: arrays only."""

from __future__ import annotations

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


@dataclass
class Features:
    """What one forward pass of the tapped model gives for a batch of ``B`` images.

    Attributes:
        final: ``(B, C, h, w)`` float32, ``F_N``.
        maps: one ``(B, h_l, w_l)`` float32 channel-sum map per earlier tap, in graph order; ``None`` when
            the graph computed ``A^b`` and they were not fetched (they stayed in onnxruntime).
        activation: ``(B, H0, W0)`` float32 ``A^b`` when the graph computed it, else ``None``.
        logits: ``(B, K)`` float32 model output when kept, else ``None``.
    """

    final: np.ndarray
    maps: list[np.ndarray] | None
    activation: np.ndarray | None = None
    logits: np.ndarray | None = None
