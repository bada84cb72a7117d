"""Faithfulness (Petsiuk et al., BMVC 2018): the deletion and insertion curves of a map, read from batched
forward passes of the original model on step images, where the map's pixels are removed from the image, or
restored into a blurred or mean-coloured copy, in the map's order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ..core import relevance
from ..errors import PFVError
from ..graph import load_model, weights_folder
from ..images import bundled
from ..images.preprocess import Preset, blank_image
from ..runtime import Session
from ..runtime.featurizer import Featurizer, ModelLike
from .colouring import class_probabilities

FILLS = ("blur", "mean")
# Step images run through the model at a time: one map's 2 (steps - 1) at the default steps, and a bounded
# memory at many.
SCORER_BATCH = 64
# The blur of the "blur" fill, as a share of the image's longer side (5 px at 224).
BLUR_SIGMA = 0.022


def fill_canvas(image: np.ndarray, fill: str, preset: Preset) -> np.ndarray:
    """What deleted pixels of an ``(H, W, 3)`` uint8 image become: a blurred copy, or the preset's mean
    colour (:func:`~pfv_onnx.images.preprocess.blank_image`)."""
    if fill == "mean":
        return blank_image(preset, image.shape[:2])
    return cv2.GaussianBlur(image, (0, 0), BLUR_SIGMA * max(image.shape[:2]), borderType=cv2.BORDER_REFLECT)


def require_scores(output: str | None, outputs: Sequence[str] | None = None) -> str:
    """``output``, the model's class scores; refused with one line when there are none (or they are not among
    ``outputs``)."""
    if output is None or (outputs is not None and output not in outputs):
        raise PFVError("the model has no class scores among its outputs: faithfulness needs them (use faithfulness=False)",
                       flags={"faithfulness=False": "--no-faithfulness"})
    return output


class Scorer:
    """The original model (not the tapped one: the taps would only slow it), run on step images."""

    def __init__(self, model: ModelLike, featurizer: Featurizer, threads: int | None):
        resolved = bundled.resolve_model(model) if isinstance(model, (str, Path)) else model
        source = load_model(resolved)
        self.featurizer = featurizer
        self.output = require_scores(featurizer.logits_output, [o.name for o in source.graph.output])
        self.session = Session(source, featurizer.providers, threads, spin=False, weights_dir=weights_folder(resolved, source))

    def probabilities(self, crops: np.ndarray, klass: int) -> np.ndarray:
        """The probability of class ``klass`` for each ``(n, H, W, 3)`` uint8 crop."""
        # One map's steps at once (up to SCORER_BATCH): larger batches than a PFV chunk run faster.
        parts = [crops[start : start + SCORER_BATCH] for start in range(0, len(crops), SCORER_BATCH)]
        values = np.concatenate([self.session.run(self.featurizer.model_input(part), [self.output])[self.output] for part in parts])
        return class_probabilities(values.reshape(len(crops), -1))[:, klass]

    def curves(
        self, image: np.ndarray, canvas: np.ndarray, maps: dict[str, np.ndarray], klass: int, steps: int, seed: int
    ) -> dict[str, tuple[list[float], list[float]]]:
        """The deletion and insertion curves (``steps + 1`` probabilities each) of every map for one image."""
        ends = self.probabilities(np.stack([image, canvas]), klass)
        curves = {}
        for name, saliency in maps.items():
            marked = relevance.steps_masks(relevance.deletion_order(saliency, seed), image.shape[:2], steps)[1:-1, ..., None]
            deleted = np.where(marked, canvas, image)
            inserted = np.where(marked, image, canvas)
            p = self.probabilities(np.concatenate([deleted, inserted]), klass)
            inner = steps - 1
            curves[name] = (
                rounded([ends[0], *p[:inner], ends[1]]),
                rounded([ends[1], *p[inner:], ends[0]]),
            )
        return curves


def rounded(values: Sequence[float]) -> list[float]:
    return [round(float(v), 5) for v in values]
