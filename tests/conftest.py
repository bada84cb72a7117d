"""Shared fixtures: the bundled model, its photos and a basis fitted on them (the helpers they use are in
``tests/helpers/``)."""

from __future__ import annotations

import pytest

from pfv_onnx import PFV
from pfv_onnx.images import bundled

from helpers.basis import fit_basis


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


@pytest.fixture(scope="session")
def fitted_pfv() -> PFV:
    """The bundled MobileNetV2 with the default options, fitted on all the sample photos in batches of 3; read
    only (a test that needs other options fits its own)."""
    return PFV().fit(bundled.sample_images(), batch_size=3)


@pytest.fixture(scope="session")
def basis_file(tmp_path_factory):
    """A basis file of the bundled MobileNetV2 (default options, the first four sample photos); read only: a
    test that changes a basis writes a copy (``helpers.basis.write_basis``)."""
    return fit_basis(tmp_path_factory.mktemp("basis") / "basis.npz")
