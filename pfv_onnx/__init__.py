"""pfv-onnx: Principal Feature Visualisation (Bakken et al., ECCV 2020) for any CNN exported to ONNX.

One onnxruntime pass of a tapped graph gives the features; a NumPy core turns them into one RGB picture per
image whose colours are the principal contrasting features of the batch.
"""

__version__ = "0.1.0"

from .errors import ImageError, LayerError, ModelError, PFVError  # noqa: E402
from .pipeline import PFV, Features, PFVResult  # noqa: E402
from .preprocess import PRESETS  # noqa: E402
from .tapping import export, tap_model  # noqa: E402

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
