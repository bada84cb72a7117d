"""The package as pip installs it: every subpackage and data file is in the wheel, and it is typed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_subpackage_and_the_bundled_data(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    names = set(zipfile.ZipFile(next(tmp_path.glob("pfv_onnx-*.whl"))).namelist())
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "pfv_onnx").rglob("__init__.py")}
    assert packages and all(f"{package}/__init__.py" in names for package in packages), packages - {n.rsplit("/", 1)[0] for n in names}
    for data in ("pfv_onnx/py.typed", "pfv_onnx/models/mobilenet_v2.onnx", "pfv_onnx/models/imagenet_labels.txt", "pfv_onnx/samples/ATTRIBUTION.md"):
        assert data in names, data
    assert not any("models/export/" in name for name in names)  # the export scripts stay in the repository


def test_nothing_in_the_package_imports_torch():
    for path in (ROOT / "pfv_onnx").rglob("*.py"):
        for line in path.read_text().splitlines():
            assert not line.strip().startswith(("import torch", "from torch")), path
