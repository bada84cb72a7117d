"""Vision transformers (random weights, small) exported the ways their users export them: timm's ViT (with
register tokens, on a non-square input), DeiT distilled (two prefix tokens), Swin (channels-last stages, patch
merging), Hugging Face transformers' ViT, and a ViT whose registers follow its patch tokens, each with both of
torch.onnx's exporters where they work. Run in timm's environment (see timm_models.py), with transformers:

    /tmp/venv-timm/bin/pip install transformers
    /tmp/venv-timm/bin/python models/export/corpus/transformer_models.py

(Seen working with timm 1.0.31, transformers 5.25.0, torch 2.14.1.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import timm
import torch
import transformers
from timm.models.deit import VisionTransformerDistilled
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _strip import save  # noqa: E402
from timm_models import DYNAMO_OPSET, OPSET, export  # noqa: E402

SMALL = dict(patch_size=8, embed_dim=64, depth=2, num_heads=2, num_classes=10)


class RegistersLast(torch.nn.Module):
    """A ViT whose register tokens follow its patch tokens: ``[class, patches..., registers...]``."""

    def __init__(self, registers: int = 3, dim: int = 64, size: int = 64, patch: int = 8):
        super().__init__()
        self.embed = torch.nn.Conv2d(3, dim, patch, patch)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.registers = torch.nn.Parameter(torch.randn(1, registers, dim) * 0.02)
        self.position = torch.nn.Parameter(torch.randn(1, 1 + (size // patch) ** 2, dim) * 0.02)
        layer = torch.nn.TransformerEncoderLayer(dim, 2, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, 10)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        patches = self.embed(image).flatten(2).transpose(1, 2)
        batch = patches.shape[0]  # traced as the batch, not as the example's 1
        tokens = torch.cat([self.cls.expand(batch, -1, -1), patches], 1) + self.position
        tokens = torch.cat([tokens, self.registers.expand(batch, -1, -1)], 1)
        return self.head(self.norm(self.blocks(tokens))[:, 0])


class LinearPatches(RegistersLast):
    """A ViT whose patch embedding is a reshape of the image into 8 x 8 patches and a linear layer (no
    convolution): ``[class, patches...]``, no registers."""

    def __init__(self, dim: int = 64, size: int = 64, patch: int = 8):
        super().__init__(registers=1, dim=dim, size=size, patch=patch)
        self.patch, self.linear = patch, torch.nn.Linear(3 * patch * patch, dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        b, c, height, width = image.shape
        p = self.patch
        patches = image.reshape(b, c, height // p, p, width // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, (height // p) * (width // p), c * p * p)
        tokens = torch.cat([self.cls.expand(b, -1, -1), self.linear(patches)], 1) + self.position
        return self.head(self.norm(self.blocks(tokens))[:, 0])


class HuggingFace(torch.nn.Module):
    """transformers' ViTForImageClassification, returning its logits."""

    def __init__(self):
        super().__init__()
        config = transformers.ViTConfig(image_size=64, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=128, num_labels=10)
        self.model = transformers.ViTForImageClassification(config)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=image).logits


class HuggingFaceSwin(torch.nn.Module):
    """transformers' SwinForImageClassification, returning its logits: its stages keep ``(B, h*w, C)`` tokens."""

    def __init__(self):
        super().__init__()
        config = transformers.SwinConfig(image_size=64, patch_size=4, embed_dim=32, depths=[1, 1, 1], num_heads=[1, 2, 4], window_size=4,
                                         num_labels=10)
        self.model = transformers.SwinForImageClassification(config)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=image).logits


# name: (module, input size, exporter[, opset])
MODELS = {
    "timm_vit_reg4_48x80": (lambda: VisionTransformer(img_size=(48, 80), reg_tokens=4, **SMALL), (48, 80), "torchscript"),
    "timm_vit_dynamo": (lambda: VisionTransformer(img_size=64, **SMALL), (64, 64), "dynamo"),
    "timm_deit_distilled": (lambda: VisionTransformerDistilled(img_size=64, **SMALL), (64, 64), "torchscript"),
    "timm_swin": (lambda: SwinTransformer(img_size=64, patch_size=4, window_size=4, embed_dim=32, depths=(1, 1, 1), num_heads=(1, 2, 4), num_classes=10),
                  (64, 64), "torchscript"),
    "timm_swin_dynamo": (lambda: SwinTransformer(img_size=64, patch_size=4, window_size=4, embed_dim=32, depths=(1, 1, 1), num_heads=(1, 2, 4), num_classes=10),
                         (64, 64), "dynamo"),
    "hf_vit": (HuggingFace, (64, 64), "torchscript"),
    "hf_vit_dynamo": (HuggingFace, (64, 64), "dynamo"),
    "hf_swin": (HuggingFaceSwin, (64, 64), "torchscript"),
    # below opset 17 LayerNormalization is exported as ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add
    "hf_vit_opset14": (HuggingFace, (64, 64), "torchscript", 14),
    "torch_vit_registers_last": (RegistersLast, (64, 64), "torchscript"),
    "torch_vit_linear_patches": (LinearPatches, (64, 64), "torchscript"),
}


def main(names: list[str]) -> None:
    for name, (make, size, exporter, *pinned) in MODELS.items():
        if names and name not in names:
            continue
        torch.manual_seed(0)
        model = make().eval()
        opset = pinned[0] if pinned else DYNAMO_OPSET if exporter == "dynamo" else OPSET
        library = f"transformers {transformers.__version__}" if name.startswith("hf") else "plain torch" if name.startswith("torch") else f"timm {timm.__version__}"
        how = f"{library} {type(model).__name__}, random weights, {size[0]} x {size[1]} px, torch.onnx ({exporter}) opset {opset}, torch {torch.__version__}"
        try:
            save(export(model, exporter, size, opset), name, how)
        except Exception as exc:  # an exporter that fails on an architecture is reported, the others go on
            print(f"{name}: {exporter} export failed: {str(exc).splitlines()[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])  # the models named, or all
