"""The fitted basis, in one place: its fit on any number of images, in process or on Dask
(:mod:`~pfv_onnx.analyses.basis.fit`), its ``.npz`` file (:mod:`~pfv_onnx.analyses.basis.file`), and the
checks that it fits a model, its inputs and the options a caller set
(:mod:`~pfv_onnx.analyses.basis.checks`). Its arrays and their maths are NumPy's:
:class:`pfv_onnx.core.FittedBasis`.
"""

from __future__ import annotations

from .checks import (
    check_channels, check_fits, check_fitted, check_header, check_layers, check_method, check_weighting, inputs_of, method_of,
)
from .file import header_inputs, header_of, load_basis, save_basis
from .fit import basis_of, fit_basis

__all__ = [
    "basis_of", "check_channels", "check_fits", "check_fitted", "check_header", "check_layers", "check_method", "check_weighting",
    "fit_basis", "header_inputs", "header_of", "inputs_of", "load_basis", "method_of", "save_basis",
]
