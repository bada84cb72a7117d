"""The checks that a basis fits what it is given to (``pfv_onnx.analyses.basis.checks``), defined once: a
basis in memory meets the same checks as a file, and the PFV, the export and the in-graph picture refuse
a basis that does not fit in the same words."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from pfv_onnx import PFV, export
from pfv_onnx.analyses.basis import save_basis
from pfv_onnx.analyses.in_graph import add_picture
from pfv_onnx.errors import ModelError, PFVError


def narrow(basis, channels: int = 8):
    """``basis`` cut to its first ``channels`` channels."""
    pca = replace(basis.pca, mean=basis.pca.mean[:channels], components=basis.pca.components[:, :channels])
    return replace(basis, pca=pca)


def test_a_basis_of_other_channels_is_refused_in_the_same_words_everywhere(fitted_pfv, tmp_path):
    featurizer = fitted_pfv.featurizer
    line = "^" + re.escape(f"the basis has 8 channels, this model's F_N ({fitted_pfv.final}) has 1280") + "$"
    with pytest.raises(ModelError, match=line):
        PFV(basis=narrow(fitted_pfv.basis))
    with pytest.raises(ModelError, match=line):
        add_picture(featurizer.tapped.model, featurizer.tapped.outputs, narrow(fitted_pfv.basis), featurizer.blank, featurizer.size)
    with pytest.raises(ModelError, match=line):
        export("mobilenet_v2", tmp_path / "m.onnx", basis=narrow(fitted_pfv.basis))
    assert list(tmp_path.iterdir()) == []


def test_a_basis_in_memory_of_other_layers_is_refused_as_the_picture_refuses_it(fitted_pfv, tmp_path):
    one_layer = replace(fitted_pfv.basis, layer_peaks=fitted_pfv.basis.layer_peaks[:1])
    with pytest.raises(ModelError, match="^the basis weights 1 layers, the model's focus weighting reads 2$"):
        PFV(basis=one_layer)
    with pytest.raises(ModelError, match="^the basis weights 1 layers, the model's focus weighting reads 2$"):
        export("mobilenet_v2", tmp_path / "m.onnx", basis=one_layer)
    assert list(tmp_path.iterdir()) == []


def test_a_basis_without_its_normalisation_is_refused_in_one_line_by_the_file_and_the_picture(fitted_pfv, tmp_path):
    unfitted = replace(fitted_pfv.basis, scaling=None)
    featurizer = fitted_pfv.featurizer
    line = r"^the basis is not fitted yet \(it has no normalisation: fit it on data first\)$"
    with pytest.raises(PFVError, match=line):
        save_basis(tmp_path / "basis.npz", unfitted, fitted_pfv._basis_header(fitted_pfv.basis))
    with pytest.raises(PFVError, match=line):
        add_picture(featurizer.tapped.model, featurizer.tapped.outputs, unfitted, featurizer.blank, featurizer.size)
    assert list(tmp_path.iterdir()) == []
