"""The method itself, on NumPy arrays only: no onnx, no onnxruntime, no pictures.

``activation``     channel sums, the total activation map A^b (paper eqs. 1-2) and the other weightings
``decomposition``  PCA of the final feature map with a deterministic sign (eqs. 3-4)
``weighting``      the components upsampled and weighted, plain and hierarchical (eq. 5)
``normalise``      joint whitening, clipping and min-max scaling of the batch (eq. 6)
``visualise``      the whole method, relative to the batch or with a fitted basis (eqs. 1-6)
``upsample``       bilinear, half-pixel upsampling of image batches
``fitted``         a basis fitted on a dataset, for colours that mean the same in every batch
``baselines``      EigenCAM and CAM from the same features, and two controls, for comparison
``relevance``      how well a map points at an object, and the steps of a deletion curve
``pairing``        whether an evaluation's masks belong to their images (a permutation test)
``metrics``        foregrounds, colour distributions, rank correlation, SSIM
``linear_probe``   softmax regression on frozen features
``parallel``       the one helper that shares work between the threads a caller gives
"""

from .activation import BlankResponse, channel_sum, total_activation, weighting_map, weighting_sources
from .baselines import centre_gaussian, class_activation_maps, eigen_cam, random_maps
from .decomposition import PrincipalComponents, fit_pca, fit_transform_pca
from .fitted import FeatureMoments, FittedBasis
from .normalise import ValueStats, normalise
from .upsample import resize_bilinear
from .visualise import Visualisation, feature_matrix, transform, visualise, weighted_stats

__all__ = [
    "BlankResponse",
    "FeatureMoments",
    "FittedBasis",
    "ValueStats",
    "PrincipalComponents",
    "Visualisation",
    "centre_gaussian",
    "channel_sum",
    "class_activation_maps",
    "eigen_cam",
    "feature_matrix",
    "fit_pca",
    "fit_transform_pca",
    "normalise",
    "random_maps",
    "resize_bilinear",
    "total_activation",
    "transform",
    "visualise",
    "weighted_stats",
    "weighting_map",
    "weighting_sources",
]
