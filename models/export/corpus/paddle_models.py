"""PaddlePaddle models (random weights) exported to ONNX by both of Paddle's exporters: ``paddle.onnx.export``
from the dynamic graph, and paddle2onnx from a saved inference model. Run in an environment of its own:

    python3 -m venv /tmp/venv-paddle && /tmp/venv-paddle/bin/pip install paddlepaddle paddle2onnx
    /tmp/venv-paddle/bin/python models/export/corpus/paddle_models.py

(Seen working with paddlepaddle 3.3.1 and paddle2onnx 2.1.0.)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import onnx
import paddle
import paddle2onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _strip import save  # noqa: E402

OPSET = 13
SIZE = 64


def main() -> None:
    paddle.seed(0)
    versions = f"paddlepaddle {paddle.__version__}, paddle2onnx {paddle2onnx.__version__}"
    spec = [paddle.static.InputSpec([None, 3, SIZE, SIZE], "float32", "image")]
    with tempfile.TemporaryDirectory() as work:
        model = paddle.vision.models.mobilenet_v2(pretrained=False)
        model.eval()
        paddle.onnx.export(model, str(Path(work) / "dynamic"), input_spec=spec, opset_version=OPSET)
        save(onnx.load(str(Path(work) / "dynamic.onnx")), "paddle_mobilenet_v2", f"paddle.vision mobilenet_v2, random weights, {SIZE} px, paddle.onnx.export opset {OPSET} ({versions})")

        model = paddle.vision.models.resnet18(pretrained=False)
        model.eval()
        static = paddle.jit.to_static(model, input_spec=spec)
        paddle.jit.save(static, str(Path(work) / "inference"))
        files = {p.suffix: p for p in Path(work).glob("inference.*")}
        program = files.get(".json") or files[".pdmodel"]
        proto = paddle2onnx.export(str(program), str(files[".pdiparams"]), opset_version=OPSET)
        converted = proto if isinstance(proto, onnx.ModelProto) else onnx.load_from_string(proto)
        save(converted, "paddle_resnet18", f"paddle.vision resnet18, random weights, {SIZE} px, jit.save then paddle2onnx.export opset {OPSET} ({versions})")


if __name__ == "__main__":
    main()
