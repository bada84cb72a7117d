"""Shared export step for the model scripts: torch -> ONNX (opset 17, dynamic batch), then checked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import torch

from pfv_onnx.graph import with_metadata


def set_metadata(path: Path, **entries: str) -> None:
    """Record ``entries`` (e.g. ``preset``, the pixel normalisation pfv-onnx should use) in the model file."""
    proto = with_metadata(onnx.load(str(path)), **entries)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def export_onnx(model: torch.nn.Module, out: Path, size: int, opset: int = 17) -> None:
    """Write ``model`` (eval mode, input ``image`` NCHW float32) to ``out`` and check it with onnxruntime."""
    model.eval()
    dummy = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    torch.onnx.export(
        model,
        (dummy,),
        str(out),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=opset,
        dynamo=False,
    )
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)

    import onnxruntime as ort

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(dummy).numpy()
    got = session.run(None, {"image": dummy.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16]
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, sha256 {digest}); onnxruntime matches torch")
