"""The examples in the facade's docstrings run, on the bundled model and its sample photos."""

from __future__ import annotations

import doctest
import tempfile

import pytest

import pfv_onnx.exporting
import pfv_onnx.pfv
import pfv_onnx.results


@pytest.mark.parametrize("module", [pfv_onnx.pfv, pfv_onnx.results, pfv_onnx.exporting], ids=lambda module: module.__name__)
def test_the_facade_examples_run(module, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # what the examples write stays in the test's folder
    results = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert results.attempted > 0
    assert results.failed == 0
    assert any(tmp_path.iterdir())
