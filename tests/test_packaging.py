"""The package as pip installs it: every subpackage and data file is declared in pyproject.toml."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_declared():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(config["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "pfv_onnx").rglob("__init__.py")}
    assert found <= declared, found - declared
    assert config["package-dir"]["pfv_onnx.models"] == "models"


def test_nothing_in_the_package_imports_torch():
    for path in (ROOT / "pfv_onnx").rglob("*.py"):
        for line in path.read_text().splitlines():
            assert not line.strip().startswith(("import torch", "from torch")), path
