"""pfv-onnx: Principal Feature Visualisation (Bakken et al., ECCV 2020) for any CNN exported to ONNX.

One onnxruntime pass of a tapped graph gives the features; a NumPy core turns them into one RGB picture per
image whose colours are the principal contrasting features of the batch.
"""

from .errors import ImageError, LayerError, ModelError, PFVError
from .pipeline import PFV, Features, PFVResult
from .preprocess import PRESETS
from .tapping import export, tap_model

__version__ = "0.1.0"

__all__ = [
    "PFV",
    "PRESETS",
    "Features",
    "ImageError",
    "LayerError",
    "ModelError",
    "PFVError",
    "PFVResult",
    "export",
    "tap_model",
]
