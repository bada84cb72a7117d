"""Bad input gets one clear line and a defined exit code, never a traceback from deep inside."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from pfv_onnx import PFV, ImageError, ModelError, PFVError
from pfv_onnx.images import bundled
from pfv_onnx.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pfv_onnx", *args], capture_output=True, text=True, timeout=300)


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, text: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pfv-onnx: error:") and text in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def not_models(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    noise = tmp_path / "noise.onnx"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(bundled.model_path().read_bytes()[:100_000])
    return {"text": text, "noise": noise, "empty": empty, "truncated": truncated, "missing": tmp_path / "missing.onnx"}


@pytest.mark.parametrize("kind", ["text", "noise", "empty", "truncated", "missing"])
def test_not_a_model(not_models, kind):
    with pytest.raises(ModelError) as info:
        PFV(not_models[kind])
    assert str(not_models[kind]) in str(info.value) and "\n" not in str(info.value)


def test_cli_not_a_model_exits_2(not_models, tmp_path):
    assert_one_line_error(run_cli("export", str(not_models["text"]), str(tmp_path / "out.onnx")), 2, "not an ONNX model")
    assert not (tmp_path / "out.onnx").exists()


def test_cli_unknown_layer_exits_2(tmp_path):
    proc = run_cli("export", "mobilenet_v2", str(tmp_path / "t.onnx"), "--final", "no/such/tensor")
    assert_one_line_error(proc, 2, "no tensor named 'no/such/tensor'")


def test_cli_usage_errors_exit_2(tmp_path):
    assert_one_line_error(run_cli("export", "a.onnx", "b.onnx", "--bogus"), 2, "unrecognized arguments: --bogus")
    assert_one_line_error(run_cli("export"), 2, "required: src, dst")
    assert_one_line_error(run_cli("frobnicate"), 2, "invalid choice")
    existing = tmp_path / "exists.onnx"
    existing.write_bytes(b"keep me")
    assert_one_line_error(run_cli("export", "mobilenet_v2", str(existing)), 2, "--overwrite")
    assert existing.read_bytes() == b"keep me"
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    assert_one_line_error(run_cli("demo", "--out", str(a_file)), 2, "not a folder")


def test_undecodable_images(mobilenet, tmp_path):
    fake = tmp_path / "photo.jpg"
    fake.write_text("not a jpeg")
    with pytest.raises(ImageError, match="photo.jpg: cannot decode image"):
        mobilenet([fake])
    with pytest.raises(ImageError, match="no such file"):
        mobilenet([tmp_path / "missing.jpg"])
    with pytest.raises(ImageError, match="uint8"):
        mobilenet([np.zeros((4, 4, 3), np.float64)])


def test_wrong_batch_shape(mobilenet):
    with pytest.raises(PFVError, match="expected a batch of shape \\(B, 3, 224, 224\\)"):
        mobilenet(np.zeros((2, 3, 100, 100), np.float32))


def test_missing_onnxruntime_names_both_extras(tmp_path):
    out = str(tmp_path / "unused")
    code = f"import sys; sys.modules['onnxruntime'] = None\nfrom pfv_onnx.cli import main\nsys.exit(main(['demo', '--out', {out!r}]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, 2, "pfv-onnx[cpu]")
    assert "pfv-onnx[gpu]" in proc.stderr


def test_main_returns_exit_codes_in_process(tmp_path):
    assert main(["export", str(tmp_path / "missing.onnx"), str(tmp_path / "x.onnx")]) == 2
