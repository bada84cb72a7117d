"""timm models (random weights) exported with both of torch.onnx's exporters. Run in an environment of its
own: timm needs torchvision, and PyPI's torchvision fails to import beside the CPU-only torch 2.13.0 the
model scripts use, so this one takes the CUDA builds of torch 2.14.1 and torchvision 0.29.1 (they run on
the CPU too; the x86-64 machines here have both wheels on disk):

    python3 -m venv /tmp/venv-timm
    /tmp/venv-timm/bin/pip install torch==2.14.1 torchvision==0.29.1 timm onnx onnxscript
    /tmp/venv-timm/bin/python models/export/corpus/timm_models.py

(Seen working with timm 1.0.31.)
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import onnx
import timm
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _strip import save  # noqa: E402

OPSET = 17
DYNAMO_OPSET = 18  # the dynamo exporter's own; asking it for 17 runs a version converter that fails on timm's graphs
SIZE = 64
# name: (timm model, exporter): resnetblur18 pads before its blur pools; the MobileNetV3 and EfficientNet
# blocks have squeeze-and-excitation.
MODELS = {
    "timm_resnetblur18": ("resnetblur18", "torchscript"),
    "timm_resnet18_dynamo": ("resnet18", "dynamo"),
    "timm_mobilenetv3_small_dynamo": ("mobilenetv3_small_100", "dynamo"),
    "timm_efficientnet_b0": ("efficientnet_b0", "torchscript"),
}


def export(model: torch.nn.Module, exporter: str, size: tuple[int, int] = (SIZE, SIZE), opset: int = OPSET) -> onnx.ModelProto:
    example = (torch.zeros(1, 3, *size),)
    axes = {"image": {0: "batch"}, "logits": {0: "batch"}}
    if exporter == "dynamo":
        program = torch.onnx.export(
            model, example, input_names=["image"], output_names=["logits"], dynamic_axes=axes, opset_version=DYNAMO_OPSET, dynamo=True
        )
        return program.model_proto
    buffer = io.BytesIO()
    torch.onnx.export(model, example, buffer, input_names=["image"], output_names=["logits"], dynamic_axes=axes, opset_version=opset, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


def main() -> None:
    torch.manual_seed(0)
    for name, (architecture, exporter) in MODELS.items():
        model = timm.create_model(architecture, pretrained=False).eval()
        opset = DYNAMO_OPSET if exporter == "dynamo" else OPSET
        how = f"timm {timm.__version__} {architecture}, random weights, {SIZE} px, torch.onnx ({exporter}) opset {opset}, torch {torch.__version__}"
        save(export(model, exporter), name, how)


if __name__ == "__main__":
    main()
