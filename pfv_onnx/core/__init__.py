"""The method itself, on NumPy arrays only: no onnx, no onnxruntime, no pictures.

``activation``     channel sums and the total activation map A^b (paper eqs. 1-2)
``decomposition``  PCA of the final feature map with a deterministic sign (eqs. 3-4)
``upsample``       bilinear, half-pixel upsampling of image batches
``normalise``      joint whitening, clipping and min-max scaling of the batch (eq. 6)
``pfv``            the whole method, plain and hierarchical (eqs. 1-6)
``baselines``      EigenCAM and CAM from the same features, for comparison
"""

from .activation import channel_sum, total_activation
from .baselines import class_activation_maps, eigen_cam
from .decomposition import PrincipalComponents, fit_pca, fit_transform_pca
from .normalise import normalise
from .pfv import Visualisation, visualise
from .upsample import resize_bilinear

__all__ = [
    "PrincipalComponents",
    "Visualisation",
    "channel_sum",
    "class_activation_maps",
    "eigen_cam",
    "fit_pca",
    "fit_transform_pca",
    "normalise",
    "resize_bilinear",
    "total_activation",
    "visualise",
]
