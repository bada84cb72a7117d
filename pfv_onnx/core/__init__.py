"""The method itself, on NumPy arrays only: no onnx, no onnxruntime, no pictures.

``activation``     channel sums and the total activation map A^b (paper eqs. 1-2)
``decomposition``  PCA of the final feature map with a deterministic sign (eqs. 3-4)
``upsample``       bilinear, half-pixel upsampling of image batches
``normalise``      joint whitening, clipping and min-max scaling of the batch (eq. 6)
``pfv``            the whole method, plain and hierarchical (eqs. 1-6)
``baselines``      EigenCAM and CAM from the same features, for comparison
``fitted``         a basis fitted on a dataset, for colours that mean the same in every batch
"""

from .activation import channel_sum, total_activation
from .baselines import class_activation_maps, eigen_cam
from .decomposition import PrincipalComponents, fit_pca, fit_transform_pca
from .fitted import FeatureMoments, FittedBasis
from .normalise import ValueStats, normalise
from .pfv import Visualisation, feature_matrix, layer_sources, transform, visualise, weighted_stats
from .upsample import resize_bilinear

__all__ = [
    "FeatureMoments",
    "FittedBasis",
    "ValueStats",
    "PrincipalComponents",
    "Visualisation",
    "channel_sum",
    "class_activation_maps",
    "eigen_cam",
    "feature_matrix",
    "fit_pca",
    "fit_transform_pca",
    "layer_sources",
    "normalise",
    "resize_bilinear",
    "total_activation",
    "transform",
    "visualise",
    "weighted_stats",
]
