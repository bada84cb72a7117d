"""onnxruntime: provider choice, one session per model, batches run in the chunks the model accepts, and the
shape probe (one run on a dummy input for the shapes ONNX shape inference leaves unknown)."""

from .session import Session, available_providers, default_chunk, default_providers, onnxruntime, resolve_providers
from .shape_probe import probe_tensors

__all__ = ["Session", "available_providers", "default_chunk", "default_providers", "onnxruntime", "probe_tensors", "resolve_providers"]
