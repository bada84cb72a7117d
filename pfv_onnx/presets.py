"""The one table of pixel normalisations (presets): data only, so the command line can list them cheaply."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import PFVError


@dataclass(frozen=True)
class Preset:
    """Pixel normalisation ``(pixel - mean) / std`` with ``pixel`` in 0..255, channels in RGB order.

    ``bgr`` reverses the channel order after normalising (Caffe-trained models).
    """

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    bgr: bool
    description: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("imagenet", (123.675, 116.28, 103.53), (58.395, 57.12, 57.375), False,
               "x/255, ImageNet mean and std (torchvision, timm)"),
        Preset("lite", (127.0,) * 3, (128.0,) * 3, False, "(x - 127) / 128 (EfficientNet-Lite)"),
        Preset("tf", (127.5,) * 3, (127.5,) * 3, False, "x / 127.5 - 1 (Keras 'tf' mode: MobileNet, Inception)"),
        Preset("caffe", (123.68, 116.779, 103.939), (1.0,) * 3, True, "BGR, ImageNet mean subtracted (Caffe, Keras VGG/ResNet)"),
        Preset("raw", (0.0,) * 3, (1.0,) * 3, False, "x as it is, 0-255 (Keras applications that normalise inside the model)"),
    )
}
# What a model gets when neither the caller nor its metadata names a preset.
DEFAULT_PRESET = "imagenet"


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (as a model's metadata may name one)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise PFVError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None
