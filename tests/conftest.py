"""Shared fixtures: synthetic features with a clear spectrum, the bundled model and photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pfv_onnx import PFV
from pfv_onnx.images import bundled


def spiked_features(batch=4, channels=24, size=6, rank=5, seed=0, dtype=np.float32) -> np.ndarray:
    """``(B, C, h, w)`` features: a few strong, well separated directions plus noise (a clear eigen-gap)."""
    rng = np.random.default_rng(seed)
    n = batch * size * size
    strength = np.geomspace(8.0, 2.0, rank)
    signal = (rng.standard_normal((n, rank)) * strength) @ rng.standard_normal((rank, channels))
    X = signal + 0.3 * rng.standard_normal((n, channels)) + 1.5
    return X.reshape(batch, size, size, channels).transpose(0, 3, 1, 2).astype(dtype)


def write_basis(path: Path, source: Path, change) -> Path:
    """A copy of the basis file ``source`` with its header or arrays changed by ``change(header, arrays)``
    (its features hash stays: the copy is taken as fitting the model ``source`` was fitted on)."""
    with np.load(source) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(bytes(arrays.pop("header")).decode())
    change(header, arrays)
    np.savez(path, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    return path


@pytest.fixture(scope="session")
def mobilenet() -> PFV:
    return PFV("mobilenet_v2", providers=["CPUExecutionProvider"])


@pytest.fixture(scope="session")
def animals() -> list:
    """Six photos, as in the paper's figure 2: cat, dog, person with dog and horse, horses, giraffe, coffee."""
    return [bundled.sample_image(s) for s in ("chelsea", "dog", "person", "horses", "giraffe", "coffee")]


@pytest.fixture(scope="session")
def animals_result(mobilenet, animals):
    return mobilenet(animals)
