"""ONNX surgery: read a model, find the layers PFV taps, add the reductions PFV needs as graph outputs.

Every function here takes and returns ``onnx.ModelProto`` (never mutating its argument) or plain data.
"""

from .head import LinearHead, linear_head
from .inputs import InputSpec, image_input
from .model_io import load_model
from .rewrite import METADATA_KEY, TappedOutputs, add_outputs, add_pfv_outputs, read_tapped_outputs
from .shapes import TensorInfo, infer_tensors
from .taps import Tap, TapPlan, find_taps, shape_candidates
from .weights import reinitialise, weighted_nodes

__all__ = [
    "METADATA_KEY",
    "InputSpec",
    "LinearHead",
    "Tap",
    "TapPlan",
    "TappedOutputs",
    "TensorInfo",
    "add_outputs",
    "add_pfv_outputs",
    "find_taps",
    "image_input",
    "infer_tensors",
    "linear_head",
    "load_model",
    "read_tapped_outputs",
    "reinitialise",
    "shape_candidates",
    "weighted_nodes",
]
