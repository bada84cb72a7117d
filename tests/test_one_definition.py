"""Facts defined once: the export's rules hold in Python and on the command line alike, each in its
caller's words; the checker's one line names what we rewrote."""

from __future__ import annotations

import onnx
import pytest

from pfv_onnx import export
from pfv_onnx.cli import main
from pfv_onnx.errors import ModelError
from pfv_onnx.graph.model_io import check_rewritten
from pfv_onnx.options import OptionError


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--uint8"], "pfv-onnx: error: --uint8 is the picture's type: give --basis too"),
        (["--statistics", "--basis", "basis.npz"],
         "pfv-onnx: error: --statistics are for colours relative to the batch: a model exported with --basis draws its own picture"),
    ],
)
def test_export_refuses_a_bad_pair_of_flags_in_one_line(tmp_path, capsys, monkeypatch, flags, line):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "mobilenet_v2", "out.onnx", *flags]) == 2
    assert capsys.readouterr().err.strip() == line
    assert list(tmp_path.iterdir()) == []


def test_export_in_python_names_the_keyword(tmp_path):
    with pytest.raises(OptionError, match=r"^uint8 is the picture's type: give basis too$"):
        export("mobilenet_v2", tmp_path / "m.onnx", uint8=True)
    with pytest.raises(OptionError, match=r"^statistics are for colours relative to the batch: a model exported with basis draws"):
        export("mobilenet_v2", tmp_path / "m.onnx", basis=tmp_path / "basis.npz", statistics=True)
    assert list(tmp_path.iterdir()) == []


def test_a_rewritten_model_that_does_not_validate_is_one_line_naming_it():
    bad = onnx.helper.make_model(onnx.helper.make_graph([onnx.helper.make_node("Relu", ["x"], ["y"])], "g", [], []))
    with pytest.raises(ModelError, match=r"^the tapped model does not validate: "):
        check_rewritten(bad, "the tapped model")
