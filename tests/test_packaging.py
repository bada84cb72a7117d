"""The package as pip installs it: every subpackage and data file is declared in pyproject.toml."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_declared():
    text = (ROOT / "pyproject.toml").read_text()
    declared = set(ast.literal_eval(re.search(r"^packages = (\[.*\])$", text, re.M).group(1)))
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "pfv_onnx").rglob("__init__.py")}
    assert found and found <= declared, found - declared
    assert '"pfv_onnx.models" = "models"' in text


def test_nothing_in_the_package_imports_torch():
    for path in (ROOT / "pfv_onnx").rglob("*.py"):
        for line in path.read_text().splitlines():
            assert not line.strip().startswith(("import torch", "from torch")), path
