"""pfv-onnx: Principal Feature Visualisation (Bakken et al., ECCV 2020) for any CNN or vision transformer exported to ONNX.

One onnxruntime pass of a tapped graph gives the features; a NumPy core turns them into one RGB picture per
image whose colours are the principal contrasting features of the batch.

The public names are the imports under ``TYPE_CHECKING`` below, which IDEs and type checkers read. At run
time each is imported when first used (``_EXPORTS``), so that ``import pfv_onnx`` (and the command line's
``--help``) stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:  # the public API ("X as X": exported, for a type checker)
    from .errors import ImageError as ImageError
    from .errors import LayerError as LayerError
    from .errors import ModelError as ModelError
    from .errors import PFVError as PFVError
    from .exporting import export as export
    from .options import OptionError as OptionError
    from .options import Options as Options
    from .pfv import PFV as PFV
    from .pfv import evaluate as evaluate
    from .results import AtlasResult as AtlasResult
    from .results import DebugResult as DebugResult
    from .results import EvaluationResult as EvaluationResult
    from .results import PFVResult as PFVResult
    from .results import SanityResult as SanityResult
    from .results import SurveyResult as SurveyResult
    from .presets import PRESETS as PRESETS
    from .runtime.features import Features as Features
    from .runtime.featurizer import Featurizer as Featurizer
    from .runtime.tapping import tap_model as tap_model


# Public name -> the module that defines it, imported when the name is first used. The same names as the
# imports above (a test holds the two together): those are for readers and type checkers, this for run time.
_EXPORTS = {
    "ImageError": "errors", "LayerError": "errors", "ModelError": "errors", "PFVError": "errors",
    "export": "exporting", "OptionError": "options", "Options": "options",
    "PFV": "pfv", "evaluate": "pfv", "PRESETS": "presets",
    "AtlasResult": "results", "DebugResult": "results", "EvaluationResult": "results", "PFVResult": "results",
    "SanityResult": "results", "SurveyResult": "results",
    "Features": "runtime.features", "Featurizer": "runtime.featurizer", "tap_model": "runtime.tapping",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a module: pfv_onnx.render, pfv_onnx.images
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
