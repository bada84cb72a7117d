"""onnxruntime: provider choice, one session per model, batches run in the chunks the model accepts; the
thread pools of the libraries around it."""

from .probe import probe_tensors
from .session import Session, available_providers, default_chunk, default_providers, onnxruntime, resolve_providers
from .threads import single_threaded

__all__ = [
    "Session", "available_providers", "default_chunk", "default_providers", "onnxruntime", "probe_tensors",
    "resolve_providers", "single_threaded",
]
