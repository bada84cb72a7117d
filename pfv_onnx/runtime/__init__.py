"""onnxruntime: provider choice, one session per model, batches run in the chunks the model accepts."""

from .probe import probe_tensors
from .session import Session, available_providers, default_providers, onnxruntime, resolve_providers

__all__ = ["Session", "available_providers", "default_providers", "onnxruntime", "probe_tensors", "resolve_providers"]
