"""The default PCA solver gives the exact principal components: PFV pictures equal those of an exact ``eigh``."""

from __future__ import annotations

import numpy as np
import pytest

from pfv_onnx import PFV
from pfv_onnx.images import bundled
from pfv_onnx.analyses.colouring import colour

from helpers.graphs import vgg16_random


def component_correlations(model, images) -> list[float]:
    """|corr| of each colour of the PFV picture, default solver against exact eigh of the covariance, with
    the paper's weighting."""
    pfv = PFV(model, weighting="paper")
    features = pfv.featurizer.forward(pfv.featurizer.load(images).inputs)
    default = pfv._colour(features)
    exact = colour(features, pfv.size, pfv.options.replace(solver="covariance"))
    assert default.visualisation.pca.solver == "randomized"  # the fast solver ran, and reached its tolerance
    return [abs(float(np.corrcoef(default.rgb[..., k].ravel(), exact.rgb[..., k].ravel())[0, 1])) for k in range(3)]


@pytest.mark.parametrize("model", ["vgg16 (random)", *bundled.MODELS])
def test_default_solver_equals_exact_pca(model):
    photos = bundled.sample_images()[:6]  # batch 6
    source = vgg16_random(classes=10) if model == "vgg16 (random)" else model
    correlations = component_correlations(source, photos)
    assert min(correlations) >= 0.999, correlations
