"""ONNX surgery: read a model, find the layers PFV taps, add the reductions PFV needs as graph outputs.

Every function here takes and returns ``onnx.ModelProto`` (never mutating its argument) or plain data.
"""

from .head import LinearHead, linear_head
from .inputs import DEFAULT_SIZE, InputSpec, image_input, pin_input_size
from .identity import bytes_sha256, features_sha256, file_sha256
from .model_io import external_tensors, load_model, load_with_weights, weights_folder, with_metadata, with_weights
from .projection import projection_model
from .rewrite import METADATA_KEY, TappedOutputs, add_outputs, add_pfv_outputs, read_tapped_outputs
from .shapes import TensorInfo, infer_tensors
from .taps import Tap, TapPlan, find_taps, reduces_spatially, shape_candidates
from .weights import reinitialise, weighted_nodes

__all__ = [
    "DEFAULT_SIZE",
    "METADATA_KEY",
    "InputSpec",
    "LinearHead",
    "Tap",
    "TapPlan",
    "TappedOutputs",
    "TensorInfo",
    "add_outputs",
    "add_pfv_outputs",
    "bytes_sha256",
    "external_tensors",
    "features_sha256",
    "file_sha256",
    "find_taps",
    "image_input",
    "infer_tensors",
    "linear_head",
    "load_model",
    "load_with_weights",
    "pin_input_size",
    "projection_model",
    "read_tapped_outputs",
    "reduces_spatially",
    "reinitialise",
    "shape_candidates",
    "weights_folder",
    "weighted_nodes",
    "with_metadata",
    "with_weights",
]
