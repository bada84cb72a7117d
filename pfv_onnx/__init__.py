"""pfv-onnx: Principal Feature Visualisation (Bakken et al., ECCV 2020) for any CNN exported to ONNX.

One onnxruntime pass of a tapped graph gives the features; a NumPy core turns them into one RGB picture per
image whose colours are the principal contrasting features of the batch.

The names below are imported when first used, so that ``import pfv_onnx`` (and the command line's
``--help``) stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from .version import __version__

# Public name -> the module that defines it.
_EXPORTS = {
    "PFV": "pfv",
    "PFVResult": "pfv",
    "Options": "options",
    "OptionError": "options",
    "Features": "runtime.features",
    "Featurizer": "runtime.featurizer",
    "PRESETS": "presets",
    "export": "exporting",
    "evaluate": "analyses.evaluate",
    "tap_model": "runtime.tapping",
    "PFVError": "errors",
    "ModelError": "errors",
    "LayerError": "errors",
    "ImageError": "errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a module: pfv_onnx.render, pfv_onnx.images
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
