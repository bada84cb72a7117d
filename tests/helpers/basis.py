"""Basis files: one fitted on the bundled model, and altered copies of a basis file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pfv_onnx import PFV
from pfv_onnx.images import bundled


def fit_basis(path: Path, photos: int = 4) -> Path:
    """A basis of the bundled MobileNetV2 with the default options, fitted on the first ``photos`` sample photos
    and saved at ``path``."""
    return PFV().fit(bundled.sample_images()[:photos]).save_basis(path)


def write_basis(path: Path, source: Path, change) -> Path:
    """A copy of the basis file ``source`` with its header or arrays changed by ``change(header, arrays)``
    (its features hash stays: the copy is taken as fitting the model ``source`` was fitted on)."""
    with np.load(source) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(bytes(arrays.pop("header")).decode())
    change(header, arrays)
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    return path
