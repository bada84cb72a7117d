"""The exported model on OpenVINO: through onnxruntime's OpenVINO execution provider and through OpenVINO's own
runtime, in an environment of their own (onnxruntime-openvino replaces onnxruntime), against the NumPy picture.

The environment is ``.venv-openvino`` at the repository's root, made with ``pip install -e '.[openvino]'`` the
first time (about a minute) and kept for later runs.
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import numpy as np
import pytest

from pfv_onnx import PFV, export
from pfv_onnx.images import bundled
from pfv_onnx.render.images import to_uint8

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENT = ROOT / ".venv-openvino"
PYTHON = ENVIRONMENT / "bin" / "python"
PHOTOS = bundled.sample_images()


@pytest.fixture(scope="module")
def openvino_python() -> Path:
    check = [str(PYTHON), "-c", "import onnxruntime, openvino, pfv_onnx; assert 'OpenVINOExecutionProvider' in onnxruntime.get_available_providers()"]
    if not PYTHON.exists() or subprocess.run(check, capture_output=True).returncode != 0:
        venv.create(ENVIRONMENT, with_pip=True, clear=True)
        install = subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "-e", f"{ROOT}[openvino]"], capture_output=True, text=True)
        assert install.returncode == 0, install.stderr[-2000:]
        subprocess.run(check, check=True)
    return PYTHON


def test_exported_model_on_openvino(tmp_path, openvino_python):
    pfv = PFV("mobilenet_v2").fit(PHOTOS)
    basis = pfv.save_basis(tmp_path / "basis.npz")
    model = tmp_path / "mobilenet_v2.pfv.onnx"
    outputs = export("mobilenet_v2", model, basis=basis)
    np.save(tmp_path / "x.npy", pfv.featurizer.load(PHOTOS).inputs)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(openvino_python), str(Path(__file__).parent / "helpers" / "openvino_run.py"), str(model), outputs.picture, str(tmp_path / "x.npy"),
                           str(basis), str(tmp_path / "out.npz"), *map(str, PHOTOS)], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(tmp_path / "out.npz")
    want = pfv.transform(PHOTOS).rgb
    assert want.std() > 0.05
    for runtime in ("provider", "runtime"):  # within 1/255 of the NumPy picture on every pixel
        assert np.abs(got[runtime].transpose(0, 2, 3, 1) - want).max() * 255 <= 1.0, runtime
    # pfv-onnx itself on the OpenVINO provider draws the same pictures, with the basis and relative to the batch.
    assert np.abs(to_uint8(got["pfv"]).astype(int) - to_uint8(want).astype(int)).max() <= 1
    relative = PFV("mobilenet_v2")(PHOTOS).rgb
    assert np.abs(got["relative"] - relative).max() * 255 <= 1.0
