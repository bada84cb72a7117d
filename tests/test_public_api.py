"""The public API: the names ``pfv_onnx`` exports (seen by IDEs, imported when first used), ``export`` taking
the options object ``PFV`` takes, and ``PFV`` keeping only its verbs and the attributes users read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

import pfv_onnx
from pfv_onnx import PFV, OptionError, Options, PFVError, export
from pfv_onnx.cli import main

PUBLIC = {"PFV", "PFVResult", "AtlasResult", "EvaluationResult", "DebugResult", "SurveyResult", "SanityResult", "Options", "OptionError", "Features", "Featurizer", "PRESETS", "export", "evaluate", "tap_model",
          "PFVError", "ModelError", "LayerError", "ImageError", "__version__"}


def test_the_package_exports_its_public_names_and_lists_them():
    assert set(pfv_onnx.__all__) == PUBLIC
    assert set(dir(pfv_onnx)) >= PUBLIC
    for name in PUBLIC:
        assert getattr(pfv_onnx, name) is not None, name
    namespace: dict = {}
    exec("from pfv_onnx import *", namespace)
    assert PUBLIC <= set(namespace)


def test_the_lazy_table_is_the_type_checkers_imports():
    """The names imported under TYPE_CHECKING (what an IDE sees) are exactly those imported at run time."""
    tree = ast.parse(Path(pfv_onnx.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING")
    imported = {alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert imported == pfv_onnx._EXPORTS


def test_importing_the_package_loads_none_of_its_modules_nor_onnx():
    code = "import sys, pfv_onnx\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('pfv_onnx', 'onnx', 'onnxruntime', 'cv2')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['pfv_onnx', 'pfv_onnx.version']"


def test_pfv_keeps_its_verbs_and_what_users_read():
    public = {name for name in dir(PFV) if not name.startswith("_")}
    assert public == {"fit", "transform", "fit_transform", "atlas", "debug", "survey", "sanity", "save_basis", "describe", "taps", "final", "size"}
    assert callable(PFV.__call__)


def test_export_takes_the_options_object(tmp_path):
    given = export("mobilenet_v2", tmp_path / "options.onnx", Options(keep_logits=False, size=(224, 224)))
    keywords = export("mobilenet_v2", tmp_path / "keywords.onnx", keep_logits=False, size=(224, 224))
    assert given == keywords and given.original == () and given.activation == "pfv_activation"
    assert [o.name for o in onnx.load(str(tmp_path / "options.onnx")).graph.output] == [given.final, *given.maps, given.activation]


def test_export_refuses_loose_arguments_where_the_options_go(tmp_path):
    with pytest.raises(OptionError, match="options must be a pfv_onnx.Options"):
        export("mobilenet_v2", tmp_path / "m.onnx", ["/features/features.18/features.18.2/Clip_output_0"])
    with pytest.raises(OptionError, match="layer is not an option"):
        export("mobilenet_v2", tmp_path / "m.onnx", layer="x")
    assert list(tmp_path.iterdir()) == []


def test_export_replaces_an_existing_file_only_with_overwrite(tmp_path):
    dst = tmp_path / "tapped.onnx"
    dst.write_bytes(b"kept")
    with pytest.raises(PFVError, match="exists already"):
        export("mobilenet_v2", dst)
    assert dst.read_bytes() == b"kept"
    export("mobilenet_v2", dst, overwrite=True)
    assert onnx.load(str(dst)).graph.output[0].name == "logits"


def test_the_export_command_passes_overwrite_on(tmp_path):
    dst = tmp_path / "tapped.onnx"
    dst.write_bytes(b"kept")
    assert main(["export", "mobilenet_v2", str(dst), "--quiet"]) == 2
    assert dst.read_bytes() == b"kept"
    assert main(["export", "mobilenet_v2", str(dst), "--quiet", "--overwrite"]) == 0
    assert onnx.load(str(dst)).graph.output[0].name == "logits"
